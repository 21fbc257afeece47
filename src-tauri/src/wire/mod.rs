//! Wire formats below every protocol room, pure or over a raw byte stream, importing no other room:
//! a borrowed JSON scan for the per-frame messages, and the lean WebSocket layer both of a call's
//! sockets run on.

pub mod decimal;
pub mod json_scan;
pub mod ws;
