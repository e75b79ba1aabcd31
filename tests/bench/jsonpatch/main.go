// Command jsonpatch times the API server's JSON Patch library applying the engine's patch
// for the bench pod, beside the same change in other shapes (make bench-jsonpatch).
//
// kube-apiserver applies a mutating webhook's patch with gopkg.in/evanphx/json-patch.v4
// (the version its go.mod pins is the one here): it encodes the object to JSON, applies
// the patch, and decodes the result. This program times the middle step alone on the
// files that `BENCH_ONLY=patch cargo bench --bench webhook` writes. The shapes take turns
// in rounds and each figure is the median of its rounds, as a multiple of the engine's
// patch measured in the same rounds.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
)

type shape struct {
	file, what string
	patch      jsonpatch.Patch
	perApply   []float64
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-jsonpatch:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: jsonpatch DIR (the files of BENCH_ONLY=patch)")
	}
	dir := os.Args[1]
	pod, err := os.ReadFile(filepath.Join(dir, "pod.json"))
	if err != nil {
		return err
	}
	shapes := []*shape{
		{file: "patch.json", what: "the engine's patch"},
		{file: "patch-whole-env.json", what: "each changed env list in one add"},
		{file: "patch-no-metadata.json", what: "without the annotation (metadata untouched)"},
		{file: "patch-empty.json", what: "no operation (decode and encode only)"},
	}
	var engine []byte
	for _, s := range shapes {
		raw, err := os.ReadFile(filepath.Join(dir, s.file))
		if err != nil {
			return err
		}
		if s.patch, err = jsonpatch.DecodePatch(raw); err != nil {
			return fmt.Errorf("%s: %w", s.file, err)
		}
		out, err := s.patch.Apply(pod)
		if err != nil {
			return fmt.Errorf("%s does not apply: %w", s.file, err)
		}
		if engine == nil {
			engine = out
		} else if s.file == "patch-whole-env.json" && !sameJSON(out, engine) {
			return fmt.Errorf("%s does not give the engine's result", s.file)
		}
	}
	const rounds, applies = 7, 400
	fmt.Printf("gopkg.in/evanphx/json-patch.v4 applying patches to the bench pod (%d B), %d rounds of %d applies each\n", len(pod), rounds, applies)
	for r := 0; r < rounds; r++ {
		for _, s := range shapes {
			start := time.Now()
			for i := 0; i < applies; i++ {
				if _, err := s.patch.Apply(pod); err != nil {
					return err
				}
			}
			s.perApply = append(s.perApply, float64(time.Since(start).Microseconds())/applies)
		}
	}
	base := median(shapes[0].perApply)
	for _, s := range shapes {
		m := median(s.perApply)
		fmt.Printf("  %-24s %3d ops  %7.1f µs per apply  %.2fx  %s\n", s.file, len(s.patch), m, m/base, s.what)
	}
	return nil
}

func sameJSON(a, b []byte) bool {
	var x, y any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	return da.Decode(&x) == nil && db.Decode(&y) == nil && reflect.DeepEqual(x, y)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
