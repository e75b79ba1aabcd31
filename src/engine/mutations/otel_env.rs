//! TODO(helper): mutation `otel_env` from DESIGN.md.

use super::MutationInput;
use k8s_openapi::api::core::v1::Pod;

pub const NAME: &str = "otel-env";

pub fn apply(_pod: &mut Pod, _input: &MutationInput<'_>) -> bool {
    false
}
