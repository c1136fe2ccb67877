//! GraphQL over WebSocket.
