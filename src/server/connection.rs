//! What the listener knows of one connection, handed to each of its requests as an
//! extension: its share of request-body memory and whether its client certificate was
//! verified. Its own module so that the listener and the router both use it without
//! importing each other.

use std::sync::Arc;

/// Body bytes beyond [`SMALL_REVIEW`](super::SMALL_REVIEW) one connection may hold at once,
/// all its HTTP/2 streams together: one maximum-size body
/// ([`BODY_LIMIT`](super::BODY_LIMIT)), so one connection never takes more than about a third
/// of [`BODY_BUDGET`](super::BODY_BUDGET), and a few connections that stall mid-body leave the
/// rest to others.
pub const CONNECTION_SHARE: usize = 6 * 1024 * 1024;

/// What the listener knows of a connection, put into each of its requests' extensions.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Body bytes beyond [`SMALL_REVIEW`](super::SMALL_REVIEW) this connection may still hold
    /// ([`CONNECTION_SHARE`]).
    pub share: Arc<tokio::sync::Semaphore>,
    /// The client certificate was verified against `--client-ca-file` in the handshake.
    pub client_verified: bool,
}

impl Connection {
    /// A new connection's entry.
    pub fn new(client_verified: bool) -> Self {
        Connection {
            share: Arc::new(tokio::sync::Semaphore::new(CONNECTION_SHARE)),
            client_verified,
        }
    }
}
