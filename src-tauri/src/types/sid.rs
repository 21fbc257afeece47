//! Call SIDs as the doors take them from outside (a URL path, a command argument).

use serde::{Deserialize, Serialize};

/// The most characters a call SID may have (Twilio's are 34; tests and the simulator use others).
const MAX_LEN: usize = 64;

/// A call SID checked for shape: 1–64 letters, digits, `-` or `_`. Whether such a call exists is the
/// services' question; this keeps paths, logs and lookups free of anything else.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallSid(String);

/// A value that is not a call SID. Its message does not repeat the value (it came from outside).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call SIDs are 1 to 64 letters, digits, - or _")]
pub struct SidError;

impl CallSid {
    /// Checks `value`'s shape.
    pub fn parse(value: impl Into<String>) -> Result<Self, SidError> {
        let value = value.into();
        let well_formed = !value.is_empty()
            && value.len() <= MAX_LEN
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if well_formed {
            Ok(CallSid(value))
        } else {
            Err(SidError)
        }
    }
}

impl TryFrom<String> for CallSid {
    type Error = SidError;

    fn try_from(value: String) -> Result<Self, SidError> {
        CallSid::parse(value)
    }
}

impl From<CallSid> for String {
    fn from(sid: CallSid) -> String {
        sid.0
    }
}

/// A SID reads as the `&str` the services take.
impl std::ops::Deref for CallSid {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_letters_digits_dash_and_underscore() {
        for good in ["CA0123abcd", "CA-demo_1", "a", &"C".repeat(64)] {
            assert_eq!(CallSid::parse(good).map(String::from), Ok(good.to_string()));
        }
        for bad in ["", "CA 1", "CA/1", "..", "CA1%2F", "CAé", &"C".repeat(65)] {
            assert_eq!(CallSid::parse(bad), Err(SidError), "{bad:?}");
        }
    }

    #[test]
    fn deserializing_checks_the_shape() {
        let sid: CallSid = serde_json::from_str(r#""CA1""#).expect("a SID");
        assert_eq!(&*sid, "CA1");
        assert_eq!(serde_json::to_string(&sid).expect("json"), r#""CA1""#);
        let err = serde_json::from_str::<CallSid>(r#""CA/1""#).expect_err("not a SID");
        assert!(err.to_string().contains("call SIDs are"), "{err}");
    }
}
