// Command runtime-default-seccomp prints, as the runtime-spec `linux.seccomp` JSON object, the
// seccomp profile Docker applies by default (github.com/moby/profiles/seccomp), set up for a
// process holding no capabilities at all. The image tests put it into the runc bundle so the
// webhook runs with seccomp on, as `seccompProfile: RuntimeDefault` has it in a cluster.
//
// Hand-written because no packaged CLI prints this profile in runtime-spec form; the profile
// and its conversion (caps, arch and kernel conditions) are moby's own code.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	// Every capability set empty: the box drops ALL, so no capability-gated syscall is allowed.
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	profile, err := seccomp.GetDefaultProfile(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "runtime-default-seccomp:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(profile); err != nil {
		fmt.Fprintln(os.Stderr, "runtime-default-seccomp:", err)
		os.Exit(1)
	}
}
