//! `run-as-non-root`: TODO(helper) rule from DESIGN.md.

use super::CheckInput;
use crate::engine::violation::Violation;

pub const ID: &str = "run-as-non-root";

pub fn check(_input: &CheckInput<'_>) -> Vec<Violation> {
    Vec::new()
}
