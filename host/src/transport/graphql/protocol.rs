//! The graphql-transport-ws protocol, as the reference server (`graphql-ws`'s
//! `src/server.ts` and `PROTOCOL.md`) speaks it: message validation, the close codes,
//! and one socket's loop over its operations.
//!
//! | close | when |
//! |---|---|
//! | 4400 `Invalid message received` | not JSON, not an object, unknown `type`, a missing or empty `id`, a malformed payload |
//! | 4400 `Message exceeds the 256 KiB limit` | a frame or message larger than [`super::MAX_MESSAGE`] (a code `graphql-ws` does not retry) |
//! | 1001 `No pong within <interval>` | the peer did not answer the previous WebSocket ping (`[graphql] ping_interval`) |
//! | 4401 `Unauthorized` | `subscribe` before `connection_ack` |
//! | 4403 `Forbidden` | `connection_init` refused (token missing, invalid, expired or revoked with auth on; not an admin) |
//! | 4406 `Subprotocol not acceptable` | the socket did not agree on `graphql-transport-ws` (none offered, or another one) |
//! | 4408 `Connection initialisation timeout` | no `connection_init` within `[graphql] init_timeout` |
//! | 4409 `Subscriber for <id> already exists` | a `subscribe` whose id is still reserved |
//! | 4429 `Too many initialisation requests` | a second `connection_init` |
//! | 4500 `Internal server error` | a server-to-client message (`next`, `error`, `connection_ack`) from the client: the reference throws on it |
//!
//! An id is reserved from its `subscribe` until its operation ends (`complete`, `error`,
//! or the client's `complete`). `error` ends an operation and no `complete` follows it;
//! the client's `complete` is not echoed; a `complete` for an unknown id is ignored.
//! An operation that fails never closes the socket.
//!
//! Operations are polled fairly: each is a stream in one [`SelectAll`], which puts a
//! stream that just yielded behind every other ready one, so one busy subscription
//! cannot starve the rest of its socket.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{BoxStream, SelectAll};
use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::schema::{OperationContext, PeriscopeSchema, guard};
use crate::auth::{Actor, AuthError};
use crate::http::AppState;

/// The subprotocol.
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// A close code and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The WebSocket close code.
    pub code: u16,
    /// The reason (at most 123 bytes, as RFC 6455 allows).
    pub reason: String,
}

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Close {
        let mut reason = reason.into();
        if reason.len() > 123 {
            // The reference falls back to the generic text rather than cut a reason.
            reason = match code {
                4409 => "Subscriber already exists".to_string(),
                _ => "Internal server error".to_string(),
            };
        }
        Close { code, reason }
    }

    fn invalid() -> Close {
        Close::new(4400, "Invalid message received")
    }

    /// A message past [`super::MAX_MESSAGE`]: 4400, which the reference client treats
    /// as fatal, where a dropped socket (1006) would make it re-send the same message.
    fn too_large() -> Close {
        Close::new(
            4400,
            format!("Message exceeds the {} KiB limit", super::MAX_MESSAGE / 1024),
        )
    }
}

/// The close a read error earns: 4400 for a frame or message past the size limit;
/// `None` (nothing to send) for a broken connection.
fn read_error(error: axum::Error) -> Option<Close> {
    match error.into_inner().downcast::<tungstenite::Error>() {
        Ok(error) if matches!(*error, tungstenite::Error::Capacity(_)) => {
            tracing::info!(%error, "graphql message refused");
            Some(Close::too_large())
        }
        _ => None,
    }
}

/// The `payload` of a `subscribe`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribePayload {
    /// The GraphQL document.
    pub query: String,
    /// Which operation of the document to run.
    pub operation_name: Option<String>,
    /// Variables, an object.
    pub variables: Option<Value>,
}

/// A message from the client, validated as the reference's `validateMessage` does.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `connection_init` with its optional payload object.
    ConnectionInit(Option<Map<String, Value>>),
    /// `ping` with its optional payload object.
    Ping(Option<Map<String, Value>>),
    /// `pong`.
    Pong,
    /// `subscribe`.
    Subscribe {
        /// The operation id.
        id: String,
        /// What to run.
        payload: SubscribePayload,
    },
    /// `complete` from the client: stop that operation.
    Complete {
        /// The operation id.
        id: String,
    },
    /// A valid message only a server sends (`connection_ack`, `next`, `error`).
    ServerOnly(String),
}

/// Parses and validates one text message; `Err` is the close it earns (4400).
pub fn parse(text: &str) -> Result<ClientMessage, Close> {
    let value: Value = serde_json::from_str(text).map_err(|_| Close::invalid())?;
    let Value::Object(mut message) = value else {
        return Err(Close::invalid());
    };
    let kind = match message.get("type") {
        Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
        _ => return Err(Close::invalid()),
    };
    let payload_object = |message: &mut Map<String, Value>| match message.remove("payload") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Close::invalid()),
    };
    let id = |message: &Map<String, Value>| match message.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        _ => Err(Close::invalid()),
    };
    match kind.as_str() {
        "connection_init" => Ok(ClientMessage::ConnectionInit(payload_object(&mut message)?)),
        "ping" => Ok(ClientMessage::Ping(payload_object(&mut message)?)),
        "pong" => payload_object(&mut message).map(|_| ClientMessage::Pong),
        "connection_ack" => payload_object(&mut message).map(|_| ClientMessage::ServerOnly(kind)),
        "subscribe" => {
            let id = id(&message)?;
            let Some(Value::Object(mut payload)) = message.remove("payload") else {
                return Err(Close::invalid());
            };
            let Some(Value::String(query)) = payload.remove("query") else {
                return Err(Close::invalid());
            };
            let operation_name = match payload.remove("operationName") {
                None | Some(Value::Null) => None,
                Some(Value::String(name)) => Some(name),
                Some(_) => return Err(Close::invalid()),
            };
            let variables = match payload.remove("variables") {
                None | Some(Value::Null) => None,
                Some(object @ Value::Object(_)) => Some(object),
                Some(_) => return Err(Close::invalid()),
            };
            if !matches!(payload.get("extensions"), None | Some(Value::Null | Value::Object(_))) {
                return Err(Close::invalid());
            }
            Ok(ClientMessage::Subscribe {
                id,
                payload: SubscribePayload {
                    query,
                    operation_name,
                    variables,
                },
            })
        }
        "next" => {
            id(&message)?;
            match message.get("payload") {
                Some(Value::Object(_)) => Ok(ClientMessage::ServerOnly(kind)),
                _ => Err(Close::invalid()),
            }
        }
        "error" => {
            id(&message)?;
            match message.get("payload") {
                Some(Value::Array(errors)) if !errors.is_empty() => Ok(ClientMessage::ServerOnly(kind)),
                _ => Err(Close::invalid()),
            }
        }
        "complete" => Ok(ClientMessage::Complete { id: id(&message)? }),
        _ => Err(Close::invalid()),
    }
}

/// What one socket was opened with.
pub struct Connection {
    /// Everything handlers share.
    pub state: AppState,
    /// The executable schema.
    pub schema: PeriscopeSchema,
    /// A token from the upgrade request (`Authorization: Bearer` or the cookie), used
    /// when `connection_init` carries no `authToken`.
    pub header_token: Option<String>,
    /// The client's address (caps per client with auth off).
    pub client: Option<std::net::IpAddr>,
    /// How long the client has to send `connection_init`.
    pub init_timeout: Duration,
    /// The longest life of one operation; zero: no cap.
    pub max_operation_duration: Duration,
    /// How often to ping the peer; zero: never.
    pub ping_interval: Duration,
    /// How long a restart keeps a workload WARN.
    pub restart_window: Duration,
}

/// What an operation's stream yields to the loop.
struct Outgoing {
    id: String,
    generation: u64,
    text: String,
    /// The operation's last message (`complete` or `error`).
    last: bool,
}

/// Serves one upgraded socket until it closes.
pub async fn serve(socket: WebSocket, connection: Connection) {
    let metrics = connection.state.metrics.clone();
    metrics.graphql_socket(1);
    let agreed = socket.protocol().and_then(|p| p.to_str().ok()) == Some(SUBPROTOCOL);
    let (mut sink, mut incoming) = socket.split();
    let close = if agreed {
        Loop::new(connection).run(&mut sink, &mut incoming).await
    } else {
        Some(Close::new(4406, "Subprotocol not acceptable"))
    };
    if let Some(close) = close {
        metrics.graphql_close(close.code);
        tracing::debug!(code = close.code, reason = %close.reason, "graphql socket closed by the server");
        let unread = close == Close::too_large();
        let frame = CloseFrame {
            code: close.code,
            reason: close.reason.into(),
        };
        if sink.send(Message::Close(Some(frame))).await.is_ok() {
            linger(&mut incoming, unread).await;
        }
    } else {
        // The client closed (or the connection broke): tungstenite queued the echo of
        // a client's close frame, which is written only by a flush. Without it the
        // client sees 1006 instead of its own code, and `graphql-ws` reports that
        // abnormal close to operations it queued on a socket it was lazily closing.
        let _ = sink.close().await;
    }
    metrics.graphql_socket(-1);
}

/// How long a socket stays open after the server's close frame, waiting for the peer's.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Waits (at most [`CLOSE_GRACE`]) for the peer's close frame or the end of the
/// connection before the socket is dropped. With input left `unread` (the rest of a
/// message past the size limit, which the WebSocket layer no longer reads) it waits
/// the whole grace: dropping a socket with unread input makes the kernel reset the
/// connection, and a peer that had not yet read the close frame would see 1006
/// instead of its code.
async fn linger(incoming: &mut Incoming, unread: bool) {
    if unread {
        tokio::time::sleep(CLOSE_GRACE).await;
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
}

/// One socket's protocol state.
struct Loop {
    connection: Connection,
    init_received: bool,
    actor: Option<Actor>,
    /// Reserved ids: the generation of the operation holding each, and its stop token.
    reserved: HashMap<String, (u64, CancellationToken)>,
    generation: u64,
    operations: SelectAll<BoxStream<'static, Outgoing>>,
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;
type Incoming = futures::stream::SplitStream<WebSocket>;

impl Loop {
    fn new(connection: Connection) -> Loop {
        Loop {
            connection,
            init_received: false,
            actor: None,
            reserved: HashMap::new(),
            generation: 0,
            operations: SelectAll::new(),
        }
    }

    /// Runs until the client leaves (`None`) or the server closes (the close to send).
    async fn run(mut self, sink: &mut Sink, incoming: &mut Incoming) -> Option<Close> {
        let init_deadline = tokio::time::sleep(self.connection.init_timeout);
        tokio::pin!(init_deadline);
        let shutdown = self.connection.state.shutdown.clone();
        // WebSocket-level pings keep proxies with an idle timeout from cutting a quiet
        // socket, and find peers that are gone: one unanswered by the next tick closes.
        let pinging = !self.connection.ping_interval.is_zero();
        let period = self.connection.ping_interval.max(Duration::from_millis(1));
        let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut awaiting_pong = false;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Some(Close::new(1001, "Going away")),
                () = &mut init_deadline, if !self.init_received => {
                    return Some(Close::new(4408, "Connection initialisation timeout"));
                }
                _ = pings.tick(), if pinging => {
                    if awaiting_pong {
                        tracing::info!(interval = ?period, "graphql peer did not answer a ping");
                        return Some(Close::new(1001, format!("No pong within {period:?}")));
                    }
                    awaiting_pong = true;
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        return None;
                    }
                }
                message = incoming.next() => {
                    let text = match message {
                        None | Some(Ok(Message::Close(_))) => return None,
                        Some(Err(error)) => return read_error(error),
                        Some(Ok(Message::Text(text))) => text.as_str().to_string(),
                        Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                            Ok(text) => text,
                            Err(_) => return Some(Close::invalid()),
                        },
                        // The WebSocket layer answers pings itself.
                        Some(Ok(Message::Ping(_))) => continue,
                        Some(Ok(Message::Pong(_))) => {
                            awaiting_pong = false;
                            continue;
                        }
                    };
                    let message = match parse(&text) {
                        Ok(message) => message,
                        Err(close) => return Some(close),
                    };
                    match self.handle(message) {
                        Ok(Some(reply)) => {
                            if sink.send(Message::Text(reply.into())).await.is_err() {
                                return None;
                            }
                        }
                        Ok(None) => {}
                        Err(close) => return Some(close),
                    }
                }
                Some(out) = self.operations.next(), if !self.operations.is_empty() => {
                    // A message of an operation the client completed (or whose id now
                    // belongs to a newer one) is dropped.
                    let current = self.reserved.get(&out.id).is_some_and(|(generation, _)| *generation == out.generation);
                    if !current {
                        continue;
                    }
                    if out.last {
                        self.reserved.remove(&out.id);
                    }
                    if sink.send(Message::Text(out.text.into())).await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    /// Handles one message: a reply to send, nothing, or the close it earns.
    fn handle(&mut self, message: ClientMessage) -> Result<Option<String>, Close> {
        match message {
            ClientMessage::ConnectionInit(payload) => {
                if self.init_received {
                    return Err(Close::new(4429, "Too many initialisation requests"));
                }
                self.init_received = true;
                let actor = self.authenticate(payload.as_ref())?;
                self.actor = Some(actor);
                Ok(Some(json!({ "type": "connection_ack" }).to_string()))
            }
            ClientMessage::Ping(payload) => Ok(Some(match payload {
                Some(payload) => json!({ "type": "pong", "payload": payload }).to_string(),
                None => json!({ "type": "pong" }).to_string(),
            })),
            ClientMessage::Pong => Ok(None),
            ClientMessage::Subscribe { id, payload } => {
                let Some(actor) = self.actor.clone() else {
                    return Err(Close::new(4401, "Unauthorized"));
                };
                if self.reserved.contains_key(&id) {
                    return Err(Close::new(4409, format!("Subscriber for {id} already exists")));
                }
                self.generation += 1;
                let stop = CancellationToken::new();
                self.reserved.insert(id.clone(), (self.generation, stop.clone()));
                let operation = self.operation(id, self.generation, payload, actor, stop);
                self.operations.push(operation);
                Ok(None)
            }
            ClientMessage::Complete { id } => {
                if let Some((_, stop)) = self.reserved.remove(&id) {
                    stop.cancel();
                }
                Ok(None)
            }
            ClientMessage::ServerOnly(kind) => {
                tracing::debug!(%kind, "a client sent a server-to-client message");
                Err(Close::new(4500, "Internal server error"))
            }
        }
    }

    /// The actor of `connection_init`: `authToken` in its payload, else the upgrade
    /// request's token. With auth on, no token, a bad one or a non-admin is 4403.
    fn authenticate(&self, payload: Option<&Map<String, Value>>) -> Result<Actor, Close> {
        let state = &self.connection.state;
        if state.auth.is_disabled() {
            return Ok(match self.connection.client {
                Some(client) => Actor::anonymous_from(client),
                None => Actor::anonymous(),
            });
        }
        let forbidden = |why: &str| {
            tracing::info!(reason = why, "graphql connection refused");
            Close::new(4403, "Forbidden")
        };
        let token = payload
            .and_then(|p| p.get("authToken"))
            .and_then(Value::as_str)
            .map(|t| t.strip_prefix("Bearer ").unwrap_or(t).to_string())
            .filter(|t| !t.is_empty())
            .or_else(|| self.connection.header_token.clone());
        let Some(token) = token else {
            return Err(forbidden("no token"));
        };
        let actor = state.auth.verify(&token).map_err(|e| forbidden(&e.to_string()))?;
        if state.auth.is_revoked(&actor.subject) {
            return Err(forbidden(&AuthError::Revoked.to_string()));
        }
        if !actor.admin {
            return Err(forbidden("not an admin (auth.admin_group)"));
        }
        Ok(actor)
    }

    /// One operation as a stream of outgoing messages: `next`s, then `complete`, or one
    /// `error`; nothing once `stop` is cancelled (the client completed it).
    fn operation(
        &self,
        id: String,
        generation: u64,
        payload: SubscribePayload,
        actor: Actor,
        stop: CancellationToken,
    ) -> BoxStream<'static, Outgoing> {
        // Fail closed: the actor is re-checked at every subscribe.
        if let Err(error) = guard(&self.connection.state, &actor) {
            let errors = json!([{ "message": error.message, "extensions": { "code": error.code } }]);
            let text = json!({ "id": id, "type": "error", "payload": errors }).to_string();
            let out = Outgoing {
                id,
                generation,
                text,
                last: true,
            };
            return futures::stream::once(async move { out }).boxed();
        }
        let mut request = async_graphql::Request::new(payload.query);
        if let Some(name) = payload.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = payload.variables {
            request = request.variables(async_graphql::Variables::from_json(variables));
        }
        let request = request.data(OperationContext {
            state: self.connection.state.clone(),
            actor,
            max_duration: self.connection.max_operation_duration,
            restart_window: self.connection.restart_window,
        });
        let responses = self.connection.schema.execute_stream(request);
        let state = OperationStream {
            id,
            generation,
            responses,
            finished: false,
        };
        futures::stream::unfold(state, OperationStream::next)
            .take_until(stop.cancelled_owned())
            .boxed()
    }
}

/// An operation's responses turned into protocol messages.
struct OperationStream {
    id: String,
    generation: u64,
    responses: BoxStream<'static, async_graphql::Response>,
    finished: bool,
}

impl OperationStream {
    /// The next message: `next` per response; `error` (the last) for a response with
    /// errors and no data; `complete` (the last) when the responses end.
    async fn next(mut self) -> Option<(Outgoing, OperationStream)> {
        if self.finished {
            return None;
        }
        let text = match self.responses.next().await {
            Some(response) if !response.errors.is_empty() && response.data == async_graphql::Value::Null => {
                self.finished = true;
                json!({ "id": self.id, "type": "error", "payload": response.errors }).to_string()
            }
            Some(response) => {
                let mut payload = json!({ "data": response.data });
                if !response.errors.is_empty() {
                    payload["errors"] = json!(response.errors);
                }
                json!({ "id": self.id, "type": "next", "payload": payload }).to_string()
            }
            None => {
                self.finished = true;
                json!({ "id": self.id, "type": "complete" }).to_string()
            }
        };
        let out = Outgoing {
            id: self.id.clone(),
            generation: self.generation,
            text,
            last: self.finished,
        };
        Some((out, self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> u16 {
        parse(text).map(|_| 0).unwrap_or_else(|close| close.code)
    }

    #[test]
    fn invalid_messages_earn_4400() {
        for text in [
            "not json",
            "[]",
            r#"{"payload":{}}"#,
            r#"{"type":""}"#,
            r#"{"type":"bogus"}"#,
            r#"{"type":"subscribe","payload":{"query":"{clusters{name}}"}}"#,
            r#"{"type":"subscribe","id":"","payload":{"query":"{clusters{name}}"}}"#,
            r#"{"type":"subscribe","id":"1","payload":{}}"#,
            r#"{"type":"subscribe","id":"1","payload":{"query":"q","variables":[]}}"#,
            r#"{"type":"complete"}"#,
            r#"{"type":"connection_init","payload":"token"}"#,
        ] {
            assert_eq!(code(text), 4400, "{text}");
        }
    }

    #[test]
    fn valid_messages_parse() {
        assert_eq!(
            parse(r#"{"type":"ping","payload":{"a":1}}"#).unwrap(),
            ClientMessage::Ping(Some(serde_json::from_str(r#"{"a":1}"#).unwrap()))
        );
        assert_eq!(
            parse(r#"{"type":"complete","id":"7"}"#).unwrap(),
            ClientMessage::Complete { id: "7".into() }
        );
        assert!(matches!(
            parse(r#"{"type":"next","id":"1","payload":{}}"#).unwrap(),
            ClientMessage::ServerOnly(_)
        ));
        let ClientMessage::Subscribe { id, payload } =
            parse(r#"{"type":"subscribe","id":"a","payload":{"query":"q","operationName":null,"variables":{"x":1}}}"#)
                .unwrap()
        else {
            panic!("a subscribe");
        };
        assert_eq!(id, "a");
        assert_eq!(payload.variables, Some(serde_json::json!({"x": 1})));
    }

    #[test]
    fn long_reasons_fall_back_to_the_generic_text() {
        let close = Close::new(4409, format!("Subscriber for {} already exists", "x".repeat(200)));
        assert_eq!(close.reason, "Subscriber already exists");
    }
}
