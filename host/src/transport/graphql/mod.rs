//! GraphQL over WebSocket at `/graphqlws`: the graphql-transport-ws protocol loop
//! ([`protocol`]), owned here because async-graphql's own handler uses the wrong close
//! codes (1002 and 1011 where the protocol says 4400 and 4401, no 4403/4408/4409),
//! echoes `complete`, never sends `error` and polls a socket's streams unfairly; the
//! `graphql-ws` client decides whether to retry from those codes. async-graphql
//! parses, validates and executes ([`schema`]); every stream policy is a
//! [`crate::transport::session::Session`]'s.
//!
//! The upgrade is public: the token travels in `connection_init` (`authToken`), or in
//! the upgrade request's `Authorization: Bearer` or cookie, and a refusal is close code
//! 4403, not an HTTP 401 the client could not read.

pub mod events;
pub mod helm;
pub mod logs;
pub mod protocol;
pub mod schema;
pub mod workload;

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::request::Parts;
use axum::response::Response;

use crate::http::AppState;

/// Bytes read from a socket at once. tungstenite allocates its read buffer eagerly
/// (128 KiB by default), which is what an idle socket costs; our messages are small
/// JSON, so 4 KiB reads lose nothing.
const READ_BUFFER: usize = 4 * 1024;
/// Write eagerly: frames are written as they come instead of collecting 128 KiB first,
/// so an idle socket holds no write buffer.
const WRITE_BUFFER: usize = 0;
/// A client that stops reading while its operations produce: its buffered output is
/// capped, then writes fail and the socket ends.
const MAX_WRITE_BUFFER: usize = 1 << 20;
/// The largest message a client may send (a `subscribe` with its document). A larger
/// one closes the socket with 4400 and a reason naming the limit ([`protocol`]).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// What `/graphqlws` needs beyond the shared state.
#[derive(Clone)]
pub struct GraphqlOptions {
    /// The executable schema.
    pub schema: schema::PeriscopeSchema,
    /// How long a client has to send `connection_init` (`[graphql] init_timeout`).
    pub init_timeout: Duration,
    /// The longest life of one operation (`[graphql] max_operation_duration`); zero:
    /// no cap.
    pub max_operation_duration: Duration,
    /// How often each socket is pinged (`[graphql] ping_interval`); zero: never.
    pub ping_interval: Duration,
    /// How long a restart keeps a workload WARN (`[graphql] restart_window`).
    pub restart_window: Duration,
}

impl std::fmt::Debug for GraphqlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphqlOptions")
            .field("init_timeout", &self.init_timeout)
            .field("max_operation_duration", &self.max_operation_duration)
            .field("ping_interval", &self.ping_interval)
            .field("restart_window", &self.restart_window)
            .finish_non_exhaustive()
    }
}

impl GraphqlOptions {
    /// The schema with the timings of `[graphql]`.
    pub fn new(config: &crate::config::GraphqlConfig) -> GraphqlOptions {
        GraphqlOptions {
            schema: schema::build(),
            init_timeout: config.init_timeout,
            max_operation_duration: config.max_operation_duration,
            ping_interval: config.ping_interval,
            restart_window: config.restart_window,
        }
    }
}

/// `GET /graphqlws`: upgrades to a WebSocket speaking graphql-transport-ws.
pub async fn upgrade(State(state): State<AppState>, upgrade: WebSocketUpgrade, parts: Parts) -> Response {
    let header_token = state.auth.request_token(&parts.headers);
    let client = crate::http::client_address(&parts, &state.trusted_proxies);
    let options = state.graphql.clone();
    upgrade
        .protocols([protocol::SUBPROTOCOL])
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        // tungstenite refuses a frame or message past the limit before reading its
        // payload; the loop turns that refusal into close 4400 (not a dropped socket,
        // which `graphql-ws` would retry with the same message forever).
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| {
            protocol::serve(
                socket,
                protocol::Connection {
                    state,
                    schema: options.schema,
                    header_token,
                    client,
                    init_timeout: options.init_timeout,
                    max_operation_duration: options.max_operation_duration,
                    ping_interval: options.ping_interval,
                    restart_window: options.restart_window,
                },
            )
        })
}
