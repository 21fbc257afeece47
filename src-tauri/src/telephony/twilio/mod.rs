//! Twilio: Media Streams wire types, TwiML builder, request signatures and the REST client.
pub mod media;
pub mod rest;
pub mod signature;
pub mod status;
pub mod twiml;
