//! Twilio: Media Streams wire types, TwiML builder and request signatures.
pub mod media;
pub mod signature;
pub mod twiml;
