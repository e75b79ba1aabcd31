//! `drop-all-capabilities`: TODO(helper) rule from DESIGN.md.

use super::CheckInput;
use crate::engine::violation::Violation;

pub const ID: &str = "drop-all-capabilities";

pub fn check(_input: &CheckInput<'_>) -> Vec<Violation> {
    Vec::new()
}
