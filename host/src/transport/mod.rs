//! Transports of live streams: one [`session`] owns every stream policy (admission,
//! RBAC, expiry, revocation, lifetime, backpressure, heartbeats, close reasons); SSE
//! (`crate::http`'s watch route) and GraphQL over WebSocket ([`graphql`]) encode it.

pub mod graphql;
pub mod session;
