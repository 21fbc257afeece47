//! The HTTP/1.1 upgrade handshake (RFC 6455 §4) as pure functions over strings and bytes; the
//! caller does the reading and writing.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 §1.3 appends to the key before hashing.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The most header bytes [`parse_response`] waits for before giving up.
pub const MAX_RESPONSE_HEADER: usize = 16 * 1024;

/// Why a handshake failed. Never carries header values: the request holds credentials and a
/// hostile server could echo them back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The response's header block passed [`MAX_RESPONSE_HEADER`] without ending.
    #[error("websocket handshake response headers exceed {MAX_RESPONSE_HEADER} bytes")]
    HeadersTooLarge,
    /// The response is not HTTP/1.x as RFC 9112 spells it.
    #[error("malformed websocket handshake response: {0}")]
    Malformed(&'static str),
    /// A 101 response that does not complete the upgrade correctly.
    #[error("invalid websocket upgrade response: {0}")]
    BadUpgrade(&'static str),
    /// Something we were asked to put in the request would break the header block (CR, LF or an
    /// empty or non-token header name).
    #[error("websocket handshake request: {0}")]
    InvalidRequest(&'static str),
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key ‖ GUID)).
pub fn accept_key(sec_websocket_key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(sec_websocket_key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (RFC 6455 §4.1).
pub fn generate_key() -> String {
    BASE64.encode(rand::random::<[u8; 16]>())
}

/// The client's upgrade request and the key it carries (for [`parse_response`]). `host` is the
/// `Host` header's value (with `:port` when not the default); `extra_headers` are added as given
/// (e.g. `Authorization`). Refuses CR/LF anywhere and header names that are not HTTP tokens, so a
/// pasted secret with a trailing newline cannot end the header block early.
pub fn client_request(
    host: &str,
    path_and_query: &str,
    extra_headers: &[(&str, &str)],
) -> Result<(String, String), HandshakeError> {
    if has_crlf(host) || host.is_empty() {
        return Err(HandshakeError::InvalidRequest("bad host"));
    }
    if has_crlf(path_and_query) || !path_and_query.starts_with('/') || path_and_query.contains(' ')
    {
        return Err(HandshakeError::InvalidRequest("bad path"));
    }
    for (name, value) in extra_headers {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(HandshakeError::InvalidRequest("bad header name"));
        }
        if has_crlf(value) {
            return Err(HandshakeError::InvalidRequest(
                "header value contains CR or LF",
            ));
        }
    }
    let key = generate_key();
    let mut req = String::with_capacity(256);
    for part in [
        "GET ",
        path_and_query,
        " HTTP/1.1\r\nHost: ",
        host,
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ",
        &key,
        "\r\nSec-WebSocket-Version: 13\r\n",
    ] {
        req.push_str(part);
    }
    for (name, value) in extra_headers {
        req.push_str(name);
        req.push_str(": ");
        req.push_str(value);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    Ok((req, key))
}

/// The server's `101 Switching Protocols` response for a request carrying `sec_websocket_key`.
pub fn server_response(sec_websocket_key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(sec_websocket_key)
    )
}

/// Parses the server's response to [`client_request`] from the bytes read so far.
///
/// `Ok(None)`: the header block (ending in an empty line) is not complete yet; read more.
/// `Ok(Some((consumed, 101)))`: upgraded; `buf[consumed..]` already belongs to the WebSocket
/// stream (pass it as `already_read`). `Ok(Some((consumed, status)))` for any other status: refused,
/// the caller reports the status. A 101 without `Upgrade: websocket`, a `Connection` with the
/// `upgrade` token and the right `Sec-WebSocket-Accept`, or with any `Sec-WebSocket-Extensions`
/// (we offer none, so their frames would be unreadable), is an error.
pub fn parse_response(buf: &[u8], key: &str) -> Result<Option<(usize, u16)>, HandshakeError> {
    let Some(end) = find_header_end(buf) else {
        return if buf.len() > MAX_RESPONSE_HEADER {
            Err(HandshakeError::HeadersTooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_RESPONSE_HEADER {
        return Err(HandshakeError::HeadersTooLarge);
    }
    // `end` points past "\r\n\r\n"; the block without its final empty line.
    let head = std::str::from_utf8(&buf[..end - 4])
        .map_err(|_| HandshakeError::Malformed("header block is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = parse_status_line(lines.next().unwrap_or(""))?;
    if status != 101 {
        return Ok(Some((end, status)));
    }

    let expected_accept = accept_key(key);
    let (mut upgrade_ok, mut connection_ok, mut accept_ok) = (false, false, false);
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(HandshakeError::Malformed("header line without a colon"))?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            // Also refuses obsolete line folding (a line starting with whitespace).
            return Err(HandshakeError::Malformed("bad header name"));
        }
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade_ok |= value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection_ok |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            if accept_ok || value != expected_accept {
                return Err(HandshakeError::BadUpgrade("wrong Sec-WebSocket-Accept"));
            }
            accept_ok = true;
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") && !value.is_empty() {
            return Err(HandshakeError::BadUpgrade(
                "server chose an extension we did not offer",
            ));
        }
    }
    if !upgrade_ok {
        return Err(HandshakeError::BadUpgrade("missing Upgrade: websocket"));
    }
    if !connection_ok {
        return Err(HandshakeError::BadUpgrade("missing Connection: upgrade"));
    }
    if !accept_ok {
        return Err(HandshakeError::BadUpgrade("missing Sec-WebSocket-Accept"));
    }
    Ok(Some((end, status)))
}

/// The offset just past the first "\r\n\r\n", if any.
fn find_header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// `HTTP/1.1 101 Switching Protocols` → 101.
fn parse_status_line(line: &str) -> Result<u16, HandshakeError> {
    let rest = line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| line.strip_prefix("HTTP/1.0 "))
        .ok_or(HandshakeError::Malformed("status line is not HTTP/1.x"))?;
    let code = rest
        .get(..3)
        .ok_or(HandshakeError::Malformed("short status line"))?;
    let after = &rest[3..];
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(after.is_empty() || after.starts_with(' ')) {
        return Err(HandshakeError::Malformed("bad status code"));
    }
    code.parse()
        .map_err(|_| HandshakeError::Malformed("bad status code"))
}

fn has_crlf(s: &str) -> bool {
    s.bytes().any(|b| b == b'\r' || b == b'\n')
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_accept_key_example() {
        // RFC 6455 §1.3's worked example.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn client_request_shape() {
        let (req, key) = client_request(
            "api.example.com",
            "/v1/realtime?model=x",
            &[("Authorization", "Bearer sk-test")],
        )
        .unwrap();
        assert_eq!(BASE64.decode(&key).unwrap().len(), 16);
        assert!(req.starts_with("GET /v1/realtime?model=x HTTP/1.1\r\nHost: api.example.com\r\n"));
        assert!(req.contains("\r\nUpgrade: websocket\r\n"));
        assert!(req.contains("\r\nConnection: Upgrade\r\n"));
        assert!(req.contains(&format!("\r\nSec-WebSocket-Key: {key}\r\n")));
        assert!(req.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(req.ends_with("\r\nAuthorization: Bearer sk-test\r\n\r\n"));
        let (_, key2) = client_request("h", "/", &[]).unwrap();
        assert_ne!(key, key2, "keys are random");
    }

    #[test]
    fn client_request_refuses_injection_without_echoing_it() {
        let err = client_request("h", "/", &[("Authorization", "Bearer sk-secret\n")]).unwrap_err();
        assert!(!err.to_string().contains("sk-secret"));
        assert!(client_request("h\r\nX: y", "/", &[]).is_err());
        assert!(client_request("h", "/a b", &[]).is_err());
        assert!(client_request("h", "noslash", &[]).is_err());
        assert!(client_request("h", "/", &[("Bad Name", "v")]).is_err());
        assert!(client_request("h", "/", &[("", "v")]).is_err());
    }

    fn ok_response(key: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nDate: x\r\n\r\n",
            accept_key(key)
        )
    }

    #[test]
    fn response_incomplete_then_complete_with_leftover() {
        let key = generate_key();
        let mut bytes = ok_response(&key).into_bytes();
        let head_len = bytes.len();
        for cut in 0..head_len {
            assert_eq!(parse_response(&bytes[..cut], &key), Ok(None), "cut {cut}");
        }
        bytes.extend_from_slice(&[0x81, 0x00]);
        assert_eq!(parse_response(&bytes, &key), Ok(Some((head_len, 101))));
    }

    #[test]
    fn server_response_is_accepted_by_parse_response() {
        let key = generate_key();
        let resp = server_response(&key);
        assert_eq!(
            parse_response(resp.as_bytes(), &key),
            Ok(Some((resp.len(), 101)))
        );
    }

    #[test]
    fn refused_status_is_reported_not_checked() {
        let resp = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(resp, "k"), Ok(Some((resp.len(), 401))));
    }

    #[test]
    fn bad_upgrades() {
        let key = generate_key();
        let good = ok_response(&key);
        let wrong_accept = good.replace(&accept_key(&key), &accept_key("other"));
        assert!(matches!(
            parse_response(wrong_accept.as_bytes(), &key),
            Err(HandshakeError::BadUpgrade(_))
        ));
        let no_upgrade = good.replace("upgrade: WebSocket\r\n", "");
        assert!(parse_response(no_upgrade.as_bytes(), &key).is_err());
        let no_conn = good.replace(
            "Connection: keep-alive, Upgrade\r\n",
            "Connection: keep-alive\r\n",
        );
        assert!(parse_response(no_conn.as_bytes(), &key).is_err());
        let no_accept = good.replace(
            &format!("Sec-WebSocket-Accept: {}\r\n", accept_key(&key)),
            "",
        );
        assert!(parse_response(no_accept.as_bytes(), &key).is_err());
        let ext = good.replace("Date: x", "Sec-WebSocket-Extensions: permessage-deflate");
        assert!(parse_response(ext.as_bytes(), &key).is_err());
        assert!(parse_response(b"HTTP/2 101 x\r\n\r\n", &key).is_err());
        assert!(parse_response(b"HTTP/1.1 1x1 x\r\n\r\n", &key).is_err());
        let folded = good.replace("Date: x", "Date: x\r\n folded");
        assert!(parse_response(folded.as_bytes(), &key).is_err());
    }

    #[test]
    fn oversized_headers_refused() {
        let mut big = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        while big.len() <= MAX_RESPONSE_HEADER {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(
            parse_response(&big, "k"),
            Err(HandshakeError::HeadersTooLarge)
        );
        big.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_response(&big, "k"),
            Err(HandshakeError::HeadersTooLarge)
        );
    }
}
