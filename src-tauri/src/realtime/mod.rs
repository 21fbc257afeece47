//! OpenAI Realtime API (GA interface only): event types, session config and the socket client.
//! Nothing here knows about Twilio.
pub mod client;
pub mod events;
pub mod models;
pub mod session;
pub mod tools;
