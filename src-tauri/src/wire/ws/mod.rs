//! A lean RFC 6455 WebSocket layer over a raw async byte stream, for the bridge's two hot sockets
//! (Twilio Media Streams, where we are the server, and the OpenAI Realtime API, where we are the
//! client).
//!
//! Why not tungstenite: for ~50 small text messages a second each way, its adapter layers (waker
//! proxies, `Sink` feed/flush, zero-filled read buffers, `BytesMut` juggling) cost about 30 % of
//! the bridge's user-space CPU. Here one `BytesMut` is read into without zero-filling, every
//! complete frame in it is parsed before the next read, payloads are unmasked in place and split
//! off as owned [`bytes::Bytes`], and writes go out from one reusable `Vec<u8>`.
//!
//! - [`frame`]: frame headers, masking and close payloads (pure).
//! - [`handshake`]: the HTTP/1.1 upgrade request/response and `Sec-WebSocket-Accept` (pure).
//! - [`WsConn`] (in `conn`): the connection: reads, assembles and validates messages,
//!   answers pings and closes, writes.
//!
//! No extensions (no permessage-deflate) and no subprotocol handling: neither peer needs them.

mod conn;
pub mod frame;
pub mod handshake;

pub use conn::{Incoming, Limits, Role, TextBytes, WsConn, WsError};
pub use handshake::{accept_key, client_request, parse_response, server_response, HandshakeError};

#[cfg(test)]
mod interop_tests;
