//! # openclaw-admission
//!
//! A Kubernetes admission webhook that keeps OpenClaw AI-agent pods in a small, locked,
//! observable box: non-root, read-only root filesystem, no capabilities, a dedicated
//! least-privilege ServiceAccount, default-deny egress, no plaintext credentials and
//! short-lived tokens; and patches in projected tokens, a Secrets Store CSI volume and the
//! OpenTelemetry env.
//!
//! ```text
//!   HTTP (axum + rustls)            JSON <-> types               pure decisions
//!  ┌──────────────────┐   bytes   ┌───────────────┐  Review   ┌────────────────────────┐
//!  │ server::router   │ ────────▶ │ admission     │ ────────▶ │ engine::evaluate/mutate│
//!  │ TLS, limits,     │ ◀──────── │ (uid kept)    │ ◀──────── │ checks/, mutations/    │
//!  │ metrics, logs    │  review   └───────────────┘  Decision └───────────┬────────────┘
//!  └──────────────────┘                                                   │ &impl ClusterView
//!                                       cluster (reflectors) / StaticView ┘
//! ```
//!
//! The engine, the policy and the admission JSON layer build without the `server` feature
//! (`cargo build --no-default-features --lib`): no tokio, axum, rustls or kube client.

pub mod admission;
pub mod engine;
pub mod wire;
pub mod yaml;

/// Every binary built with the server (`serve`, `check`, `audit`, the tests and benches) uses
/// mimalloc: a review is a few hundred short-lived allocations, and the engine bench spent a
/// quarter of its samples in glibc's malloc and free (docs/performance.md).
#[cfg(feature = "server")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "server")]
pub mod certs;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod cluster;
#[cfg(feature = "server")]
pub mod server;
