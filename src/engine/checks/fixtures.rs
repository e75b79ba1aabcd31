//! Test fixtures: small chainable builders.
