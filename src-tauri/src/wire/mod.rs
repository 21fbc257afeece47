//! Wire formats below every protocol room, pure or over a raw byte stream, importing no other room:
//! a borrowed JSON scan for the per-frame messages, and the lean WebSocket layer both of a call's
//! sockets run on, and the TCP stream under a served connection.

pub mod decimal;
pub mod json_scan;
pub mod slotted;
pub mod ws;
