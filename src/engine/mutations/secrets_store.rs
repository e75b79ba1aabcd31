//! TODO(helper): mutation `secrets_store` from DESIGN.md.

use super::MutationInput;
use k8s_openapi::api::core::v1::Pod;

pub const NAME: &str = "secrets-store";

pub fn apply(_pod: &mut Pod, _input: &MutationInput<'_>) -> bool {
    false
}
