//! The simulator: both outside parties of a call, speaking the published protocols.
//!
//! - [`realtime_server`]: a fake OpenAI Realtime GA server.
//! - [`twilio_caller`]: a fake Twilio caller (signed webhook, Media Streams socket, playout clock).
//!
//! Used by the tests, `verbio bench` and the desktop's demo call; never by production paths.
pub mod realtime_server;
pub mod twilio_caller;
