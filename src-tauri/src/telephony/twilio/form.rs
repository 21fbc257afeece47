//! Twilio's webhook parameters, read once: an `application/x-www-form-urlencoded` body (or a signed
//! JSON body's string fields) kept as Twilio sent it, with accessors whose errors name the parameter.
//!
//! The pairs stay in order, repeated names included, because the request signature covers every one
//! of them ([`super::signature`] sorts them itself).

/// Why a webhook's parameters cannot be used. Messages name the parameter, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("malformed JSON body")]
    Json,
}

/// A webhook's parameters, in the order Twilio sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Decodes an `application/x-www-form-urlencoded` body (`+` and `%XX` decoded, repeats kept).
    ///
    /// ```
    /// use verbio::telephony::twilio::form::Form;
    /// let form = Form::parse(b"CallSid=CA1&From=%2B14155550100&From=x");
    /// assert_eq!(form.optional("From"), Some("+14155550100"));
    /// assert_eq!(form.pairs().len(), 3);
    /// ```
    pub fn parse(body: &[u8]) -> Form {
        Form {
            pairs: url::form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The string fields of a JSON object body (what a signed JSON webhook carries); other fields
    /// are left out.
    pub fn from_json(body: &[u8]) -> Result<Form, FormError> {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(body).map_err(|_| FormError::Json)?;
        Ok(Form {
            pairs: map
                .into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(v) => Some((k, v)),
                    _ => None,
                })
                .collect(),
        })
    }

    /// Parameters given as pairs (tests, and callers that built them elsewhere).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Form {
        Form {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Every pair as sent: what the request signature covers.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The first value of `name` as sent (possibly empty).
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, unless it is absent or empty (Twilio sends empty fields for
    /// values it does not have).
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.optional(name).filter(|v| !v.is_empty())
    }

    /// The first value of `name`; absent or empty is [`FormError::Missing`] naming it.
    pub fn required(&self, name: &'static str) -> Result<&str, FormError> {
        self.non_empty(name).ok_or(FormError::Missing(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_repeats_are_kept_and_the_first_value_is_read() {
        let form = Form::parse(b"b=2&a=1&b=3&Empty=&Sp=a+b%26c");
        assert_eq!(
            form.pairs(),
            [
                ("b".to_string(), "2".to_string()),
                ("a".into(), "1".into()),
                ("b".into(), "3".into()),
                ("Empty".into(), "".into()),
                ("Sp".into(), "a b&c".into()),
            ]
        );
        assert_eq!(form.optional("b"), Some("2"));
        assert_eq!(form.optional("Sp"), Some("a b&c"));
        assert_eq!(form.optional("Empty"), Some(""));
        assert_eq!(form.non_empty("Empty"), None);
        assert_eq!(form.optional("Absent"), None);
    }

    #[test]
    fn required_names_the_missing_parameter() {
        let form = Form::from_pairs([("CallSid", "CA1"), ("CallStatus", "")]);
        assert_eq!(form.required("CallSid"), Ok("CA1"));
        assert_eq!(
            form.required("CallStatus"),
            Err(FormError::Missing("CallStatus"))
        );
        let err = form.required("AnsweredBy").unwrap_err();
        assert_eq!(err.to_string(), "AnsweredBy is required");
    }

    #[test]
    fn json_bodies_give_their_string_fields() {
        let form = Form::from_json(br#"{"CallSid":"CA1","Duration":12,"To":"+1"}"#).unwrap();
        assert_eq!(form.optional("CallSid"), Some("CA1"));
        assert_eq!(form.optional("Duration"), None, "not a string");
        assert_eq!(form.optional("To"), Some("+1"));
        assert_eq!(Form::from_json(b"{\"CallSid\":"), Err(FormError::Json));
        assert_eq!(Form::from_json(b"[1]"), Err(FormError::Json));
    }
}
