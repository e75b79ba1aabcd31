//! `short-lived-token`: TODO(helper) rule from DESIGN.md.

use super::CheckInput;
use crate::engine::violation::Violation;

pub const ID: &str = "short-lived-token";

pub fn check(_input: &CheckInput<'_>) -> Vec<Violation> {
    Vec::new()
}
