//! What the process-level tests share: paths, and a lock so that the tests that load the
//! machine do not measure each other.

use std::path::PathBuf;

pub fn manifest_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}
