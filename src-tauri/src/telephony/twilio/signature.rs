//! Twilio request signatures (`X-Twilio-Signature`).
//!
//! `base64(HMAC-SHA1(auth_token, url + every form param name and value, sorted by name))`.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Computes the signature Twilio sends for a request to `url` with form `params`.
///
/// ```
/// use verbio::telephony::twilio::signature::compute;
/// let sig = compute("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &[
///     ("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
///     ("From", "+12349013030"), ("To", "+18005551212"),
/// ]);
/// assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
/// ```
pub fn compute<K: AsRef<str>, V: AsRef<str>>(auth_token: &str, url: &str, params: &[(K, V)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    sorted.sort();
    let mut mac = match Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
