//! TODO(helper): mutation `short_lived_token` from DESIGN.md.

use super::MutationInput;
use k8s_openapi::api::core::v1::Pod;

pub const NAME: &str = "short-lived-token";

pub fn apply(_pod: &mut Pod, _input: &MutationInput<'_>) -> bool {
    false
}
