//! Twilio: Media Streams wire types, TwiML builder, request signatures, the REST client, and its
//! webhooks as typed values (parameters, callbacks, the URLs Twilio is given).
pub mod answered_by;
pub mod callbacks;
pub mod direction;
pub mod form;
pub mod media;
pub mod rest;
pub mod signature;
pub mod status;
pub mod twiml;
pub mod webhooks;
