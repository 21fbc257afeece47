//! Twilio: Media Streams wire types, TwiML builder, request signatures, the REST client, and its
//! webhooks as typed values (parameters, callbacks, the URLs Twilio is given).

/// `Display` and `Serialize` as Twilio's own spelling (the type's `as_str`), so a typed value is
/// logged, stored and sent to the UI exactly as Twilio wrote it.
macro_rules! twilio_spelling {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

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
