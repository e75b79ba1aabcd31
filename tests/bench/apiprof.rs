//! Where kube-apiserver's CPU goes per Pod create, from a Go CPU profile of it
//! (`/debug/pprof/profile`) read with `go tool pprof -traces`.
//!
//! Every sample is counted once, in one bucket, so the buckets add up to the profile's total.
//! Two kinds of bucket: a few components claim every sample with one of their frames anywhere
//! in the stack (the CEL admission code, JSON patch, managed fields, audit, watch serving):
//! what they call is their cost, whatever it is made of. The rest is sorted by the innermost
//! frame that names a kind of work (JSON, protobuf and etcd, TLS and HTTP, conversion, GC and
//! allocation, the Go scheduler, the webhook dispatchers' own code), so that, say, the JSON
//! encoding of a webhook's AdmissionReview counts as JSON. A few inclusive rows beside them
//! (not adding up) say how much ran under the admission chain and its webhook and policy
//! plugins.

use anyhow::{Context as _, bail, ensure};
use std::path::Path;
use std::process::Command;

/// One bucket: a sample belongs to it when a frame's function name starts with one of
/// `frames` and with none of `except`; a pattern `A*B` means "starts with A and contains B".
pub struct Bucket {
    pub label: &'static str,
    frames: &'static [&'static str],
    except: &'static [&'static str],
}

fn matches(pattern: &str, function: &str) -> bool {
    match pattern.split_once('*') {
        Some((prefix, inner)) => function.starts_with(prefix) && function.contains(inner),
        None => function.starts_with(pattern),
    }
}

impl Bucket {
    fn matches(&self, function: &str) -> bool {
        self.frames.iter().any(|p| matches(p, function))
            && !self.except.iter().any(|p| matches(p, function))
    }
}

/// Components: a sample with any of their frames is theirs (checked in this order).
const COMPONENTS: &[Bucket] = &[
    Bucket {
        label: "CEL: admission policies, webhook match conditions",
        frames: &[
            "k8s.io/apiserver/pkg/admission/plugin/policy",
            "k8s.io/apiserver/pkg/admission/plugin/cel",
            "k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions",
            "k8s.io/apiserver/pkg/cel",
            "github.com/google/cel-go",
        ],
        except: &[],
    },
    Bucket {
        label: "JSON patch apply",
        frames: &[
            "gopkg.in/evanphx/json-patch",
            "github.com/evanphx/json-patch",
        ],
        except: &[],
    },
    Bucket {
        label: "managed fields",
        frames: &[
            "sigs.k8s.io/structured-merge-diff",
            // Not k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager: its admission
            // controller wraps the mutating plugins, webhook calls and all.
            "k8s.io/apimachinery/pkg/util/managedfields",
        ],
        except: &[],
    },
    Bucket {
        label: "audit log",
        frames: &[
            "k8s.io/apiserver/pkg/audit",
            "k8s.io/apiserver/plugin/pkg/audit",
            "gopkg.in/natefinch/lumberjack",
        ],
        except: &[],
    },
    Bucket {
        label: "watch cache, watch streams",
        frames: &[
            "k8s.io/apiserver/pkg/storage/cacher",
            "k8s.io/apiserver/pkg/endpoints/handlers.serveWatch",
            "k8s.io/apiserver/pkg/endpoints/handlers.(*WatchServer)",
            "k8s.io/apimachinery/pkg/watch",
        ],
        // It hands creates and reads to the etcd store: a wrapper, not watch work.
        except: &["k8s.io/apiserver/pkg/storage/cacher.(*CacheDelegator)"],
    },
];

/// Kinds of work: the innermost frame matching one of them decides (within one frame, the
/// first listed wins).
const KINDS: &[Bucket] = &[
    Bucket {
        label: "GC, allocation",
        frames: &[
            "runtime.gcBgMarkWorker",
            "runtime.gcDrain",
            "runtime.gcAssistAlloc",
            "runtime.gcStart",
            "runtime.gcMarkDone",
            "runtime.gcMarkTermination",
            "runtime.markroot",
            "runtime.scanobject",
            "runtime.scanObject",
            "runtime.greyobject",
            "runtime.wbBufFlush",
            "runtime.gcWriteBarrier",
            "runtime.bgsweep",
            "runtime.sweepone",
            "runtime.(*sweepLocked)",
            "runtime.bgscavenge",
            "runtime.mallocgc",
            "runtime.newobject",
            "runtime.makeslice",
            "runtime.growslice",
            "runtime.(*mheap)",
            "runtime.(*mcache)",
            "runtime.(*mcentral)",
        ],
        except: &[],
    },
    Bucket {
        label: "Go scheduler, channels, locks",
        frames: &[
            "runtime.schedule",
            "runtime.findRunnable",
            "runtime.park_m",
            "runtime.mcall",
            "runtime.gopark",
            "runtime.goready",
            "runtime.ready",
            "runtime.wakep",
            "runtime.startm",
            "runtime.stopm",
            "runtime.stealWork",
            "runtime.runqgrab",
            "runtime.netpoll",
            "runtime.sysmon",
            "runtime.futex",
            "runtime.notesleep",
            "runtime.notewakeup",
            "runtime.semasleep",
            "runtime.semawakeup",
            "runtime.usleep",
            "runtime.osyield",
            "runtime.lock2",
            "runtime.unlock2",
            "runtime.selectgo",
            "runtime.chansend",
            "runtime.chanrecv",
            "runtime.newproc",
            "runtime.goexit0",
            "runtime.exitsyscall",
            "runtime.entersyscall",
            "runtime.(*timers)",
            "sync.(*Mutex)",
            "sync.(*RWMutex)",
            "internal/sync.",
        ],
        except: &[],
    },
    Bucket {
        label: "JSON encode/decode",
        frames: &[
            "encoding/json.",
            "sigs.k8s.io/json",
            "k8s.io/apimachinery/pkg/runtime/serializer/json",
            "k8s.io/apimachinery/pkg/util/json",
            "github.com/json-iterator",
            "github.com/modern-go/reflect2",
            // The API types' own JSON methods (Time, Quantity, IntOrString, ...).
            "*MarshalJSON",
        ],
        except: &[],
    },
    Bucket {
        label: "protobuf, etcd client and storage",
        frames: &[
            "k8s.io/apimachinery/pkg/runtime/serializer/protobuf",
            "google.golang.org/protobuf",
            "google.golang.org/grpc",
            "github.com/gogo/protobuf",
            "github.com/golang/protobuf",
            "go.etcd.io/",
            "k8s.io/apiserver/pkg/storage",
            // The generated protobuf code of the API types.
            "k8s.io/*).Marshal",
            "k8s.io/*).Unmarshal",
            "k8s.io/*).Size",
            "k8s.io/*.encodeVarint",
            "k8s.io/*.sovGenerated",
        ],
        except: &[],
    },
    Bucket {
        label: "TLS, HTTP/1.1, HTTP/2",
        frames: &[
            "crypto/",
            "net/http.",
            "net/http/",
            "golang.org/x/net/http2",
        ],
        except: &[],
    },
    Bucket {
        label: "conversion, defaulting, deep copy",
        frames: &[
            "k8s.io/apimachinery/pkg/conversion",
            "k8s.io/apimachinery/pkg/runtime.(*Scheme).Convert",
            "k8s.io/apimachinery/pkg/runtime.(*Scheme).Default",
            "k8s.io/apimachinery/pkg/runtime.(*unstructuredConverter)",
            "k8s.io/*.DeepCopy",
            "k8s.io/*Convert_",
            "k8s.io/*SetDefaults_",
            "k8s.io/*SetObjectDefaults_",
        ],
        except: &[],
    },
    Bucket {
        label: "webhook plugins' own code (matching, reinvocation)",
        frames: &["k8s.io/apiserver/pkg/admission/plugin/webhook"],
        except: &[],
    },
];

/// Inclusive figures: samples with any frame of the group, whatever bucket they are in.
const INCLUSIVE: &[Bucket] = &[
    Bucket {
        label: "under admission, all plugins",
        frames: &["k8s.io/apiserver/pkg/admission"],
        except: &[],
    },
    Bucket {
        label: "under the webhook plugins",
        frames: &["k8s.io/apiserver/pkg/admission/plugin/webhook"],
        except: &[],
    },
    Bucket {
        label: "under the policy plugins",
        frames: &["k8s.io/apiserver/pkg/admission/plugin/policy"],
        except: &[],
    },
];

const OTHER: &str = "other (handlers, filters, validation, ...)";

/// The samples of a profile: (CPU seconds, stack from the leaf to the root).
pub struct Traces {
    /// The profile's own total (`Total samples = ...`), seconds.
    pub total: f64,
    pub samples: Vec<(f64, Vec<String>)>,
}

/// A pprof duration as printed: `10ms`, `1.20s`, `1.5mins`.
fn parse_duration(text: &str) -> Option<f64> {
    // An empty profile's total is a bare `0`.
    if text == "0" {
        return Some(0.0);
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "mins" | "min" | "m" => 60.0,
        "hrs" | "hr" | "h" => 3600.0,
        _ => return None,
    };
    Some(value * scale)
}

/// The text of `go tool pprof -traces`: a header, then one block per distinct stack, each
/// opening with a separator line (`-----------+---...`), its value beside the leaf frame and
/// one frame per line below it. Lines in a block before the value line (pprof labels) are
/// skipped.
pub fn parse_traces(text: &str) -> anyhow::Result<Traces> {
    let mut total = None;
    let mut samples: Vec<(f64, Vec<String>)> = Vec::new();
    let mut in_block = false;
    let mut current: Option<(f64, Vec<String>)> = None;
    for line in text.lines() {
        if line.starts_with("-----------+") {
            samples.extend(current.take());
            in_block = true;
            continue;
        }
        if !in_block {
            // Header: `Duration: 10s, Total samples = 15.20s (152.00%)`
            if let Some(rest) = line.strip_prefix("Duration: ") {
                let (_, t) = rest.split_once(", Total samples = ").with_context(|| {
                    format!("pprof's header line {line:?} does not give the total")
                })?;
                total = t.split_whitespace().next().and_then(parse_duration);
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let frame = |s: &str| s.trim().trim_end_matches(" (inline)").to_string();
        match &mut current {
            Some((_, stack)) => stack.push(frame(trimmed)),
            None => {
                let (first, rest) = trimmed
                    .split_once(char::is_whitespace)
                    .unwrap_or((trimmed, ""));
                match parse_duration(first) {
                    Some(v) if !rest.trim().is_empty() => {
                        current = Some((v, vec![frame(rest)]));
                    }
                    // A label line (`key: value`) before the stack.
                    _ => {}
                }
            }
        }
    }
    samples.extend(current.take());
    let total = total.context("pprof printed no `Total samples` header")?;
    let summed: f64 = samples.iter().map(|(v, _)| v).sum();
    // pprof rounds each printed value; a stack of 10 ms samples adds up exactly, yet allow
    // for rounding on large values.
    ensure!(
        (summed - total).abs() <= 0.01 * total.max(0.1),
        "the traces add up to {summed:.3} s, pprof's total is {total:.3} s"
    );
    Ok(Traces { total, samples })
}

/// CPU seconds per bucket: the exclusive buckets (components, kinds, other; adding up to the
/// total) and the inclusive rows.
pub struct Split {
    pub exclusive: Vec<(&'static str, f64)>,
    pub inclusive: Vec<(&'static str, f64)>,
    pub total: f64,
}

pub fn split(traces: &Traces) -> Split {
    let mut exclusive: Vec<(&'static str, f64)> = COMPONENTS
        .iter()
        .chain(KINDS)
        .map(|b| (b.label, 0.0))
        .chain([(OTHER, 0.0)])
        .collect();
    let mut inclusive: Vec<(&'static str, f64)> =
        INCLUSIVE.iter().map(|b| (b.label, 0.0)).collect();
    for (value, stack) in &traces.samples {
        let component = COMPONENTS
            .iter()
            .position(|b| stack.iter().any(|f| b.matches(f)));
        let kind = || {
            stack
                .iter()
                .find_map(|f| KINDS.iter().position(|b| b.matches(f)))
                .map(|k| COMPONENTS.len() + k)
        };
        let at = component.or_else(kind).unwrap_or(exclusive.len() - 1);
        exclusive[at].1 += value;
        for (b, row) in INCLUSIVE.iter().zip(inclusive.iter_mut()) {
            if stack.iter().any(|f| b.matches(f)) {
                row.1 += value;
            }
        }
    }
    Split {
        exclusive,
        inclusive,
        total: traces.total,
    }
}

/// Why `go tool pprof` cannot be used here, or None when it can.
pub fn go_missing() -> Option<String> {
    match Command::new("go").args(["tool", "-n", "pprof"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`go tool -n pprof` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("no `go` to run pprof with ({e})")),
    }
}

/// `go tool pprof ARGS FILE`, its standard output. The binary is not passed: a Go CPU profile
/// carries its function names, and the control plane's binaries are stripped (`-s -w`).
fn pprof(args: &[&str], file: &Path) -> anyhow::Result<String> {
    let out = Command::new("go")
        .arg("tool")
        .arg("pprof")
        .args(args)
        .arg(file)
        // Never fetch another toolchain for a go.mod above the working directory.
        .env("GOTOOLCHAIN", "local")
        .output()
        .context("cannot run go tool pprof")?;
    if !out.status.success() {
        bail!(
            "go tool pprof {} {} failed: {}",
            args.join(" "),
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn traces(file: &Path) -> anyhow::Result<Traces> {
    parse_traces(&pprof(&["-traces"], file)?)
}

/// The `n` functions with the most samples of their own, as pprof's `-top` lines.
pub fn top(file: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    let text = pprof(&["-top", &format!("-nodecount={n}")], file)?;
    Ok(text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .map(str::to_string)
        .collect())
}
