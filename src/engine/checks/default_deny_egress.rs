//! `default-deny-egress`: TODO(helper) rule from DESIGN.md.

use super::CheckInput;
use crate::engine::violation::Violation;

pub const ID: &str = "default-deny-egress";

pub fn check(_input: &CheckInput<'_>) -> Vec<Violation> {
    Vec::new()
}
