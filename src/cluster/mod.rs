//! Live cluster view over kube-runtime reflectors (later issue).
