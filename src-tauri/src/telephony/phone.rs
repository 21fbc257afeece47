//! Phone numbers in E.164 form (`+` country code and subscriber number, at most 15 digits), the only
//! form Twilio's REST API takes for `To` and `From`.
//!
//! Users paste numbers as they see them (`+1 (415) 555-0123`), so spaces, dashes, dots and
//! parentheses are dropped first; anything else is refused with a message that says what to type.
//!
//! ```
//! use verbio::telephony::phone::E164;
//! assert_eq!(E164::parse("+1 (415) 555-0123").unwrap().as_str(), "+14155550123");
//! assert!(E164::parse("415-555-0123").is_err());
//! ```

use serde::Serialize;

/// A number that passed [`E164::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct E164(String);

/// Why a number is not E.164. The message quotes the input (a phone number is not a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("the phone number is empty")]
    Empty,
    #[error("{0:?} has no country code: E.164 numbers start with + and the country code, e.g. +14155550123")]
    NoPlus(String),
    #[error("{0:?} contains {1:?}: only digits may follow the +")]
    BadCharacter(String, char),
    #[error("{0:?} has {1} digits: E.164 numbers have 2 to 15")]
    BadLength(String, usize),
    #[error("{0:?}: country codes never start with 0")]
    LeadingZero(String),
}

impl E164 {
    pub fn parse(input: &str) -> Result<E164, PhoneNumberError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneNumberError::Empty);
        }
        let compact: String = trimmed
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
            .collect();
        let Some(digits) = compact.strip_prefix('+') else {
            return Err(PhoneNumberError::NoPlus(trimmed.to_string()));
        };
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(PhoneNumberError::BadCharacter(trimmed.to_string(), bad));
        }
        if !(2..=15).contains(&digits.len()) {
            return Err(PhoneNumberError::BadLength(
                trimmed.to_string(),
                digits.len(),
            ));
        }
        if digits.starts_with('0') {
            return Err(PhoneNumberError::LeadingZero(trimmed.to_string()));
        }
        Ok(E164(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_formatted_numbers() {
        for (input, want) in [
            ("+14155550123", "+14155550123"),
            (" +1 (415) 555-0123 ", "+14155550123"),
            ("+44 20 7946.0958", "+442079460958"),
            ("+491", "+491"),
        ] {
            assert_eq!(E164::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn refuses_what_twilio_would_refuse() {
        assert_eq!(E164::parse("  "), Err(PhoneNumberError::Empty));
        assert!(matches!(
            E164::parse("4155550123"),
            Err(PhoneNumberError::NoPlus(_))
        ));
        assert!(matches!(
            E164::parse("+1415555O123"),
            Err(PhoneNumberError::BadCharacter(_, 'O'))
        ));
        assert!(matches!(
            E164::parse("+1234567890123456"),
            Err(PhoneNumberError::BadLength(_, 16))
        ));
        assert!(matches!(
            E164::parse("+0441234"),
            Err(PhoneNumberError::LeadingZero(_))
        ));
        assert!(matches!(
            E164::parse("+1+4155550123"),
            Err(PhoneNumberError::BadCharacter(_, '+'))
        ));
        let message = E164::parse("555-0123").unwrap_err().to_string();
        assert!(message.contains("+14155550123"), "{message}");
    }
}
