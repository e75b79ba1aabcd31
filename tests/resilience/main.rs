//! Hard to knock over: properties the webhook keeps under hostile input, hostile clients,
//! long load, certificate rotation and a lost API server. Each test ends by itself, uses
//! loopback only, and fails when its property breaks (docs/operations.md, "Resilience").
//!
//! - [`properties`]: proptest over the review reader and the engine (`admission::handle`).
//! - [`connections`]: thousands of idle or trickling connections, 20 concurrent 6 MiB bodies,
//!   stalled declarations and bodies stalled after 5 MiB beside normal reviews, and client
//!   authentication (`--client-ca-file`), against a real `serve` process.
//! - [`soak`]: 200,000 reviews over keep-alive TLS with a certificate rotation in the middle,
//!   the resident set sampled.
//! - [`apiserver_down`]: the API server stopped and started again under a live `serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apiserver_down;
mod connections;
mod properties;
mod soak;
mod support;
