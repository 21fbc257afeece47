//! RFC 6455 §5 frame headers, masking and close payloads. Pure: no I/O, no state.

/// A frame's opcode (RFC 6455 §5.2). Reserved opcodes never get this far: [`parse_header`] refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: the next fragment of a fragmented data message.
    Continuation,
    /// 0x1: a UTF-8 text message (or its first fragment).
    Text,
    /// 0x2: a binary message (or its first fragment).
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented, allowed between data fragments.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// The largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest possible header: 2 bytes, an 8-byte length and a 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// A parsed frame header. Only what the connection needs; RSV bits are refused, not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: the last frame of its message.
    pub fin: bool,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes (below 2^63, checked).
    pub len: u64,
}

/// Why a header is refused, whatever the connection's role or state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// RSV1–3 set without a negotiated extension.
    ReservedBits,
    /// Opcodes 0x3–0x7 and 0xB–0xF.
    UnknownOpcode,
    /// A control frame without FIN.
    FragmentedControl,
    /// A control frame over 125 bytes.
    ControlTooLong,
    /// A 64-bit length with the most significant bit set.
    LengthMsb,
}

impl HeaderError {
    /// A short, fixed description for error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderError::ReservedBits => "reserved bits set without a negotiated extension",
            HeaderError::UnknownOpcode => "unknown opcode",
            HeaderError::FragmentedControl => "fragmented control frame",
            HeaderError::ControlTooLong => "control frame payload over 125 bytes",
            HeaderError::LengthMsb => "64-bit payload length with the most significant bit set",
        }
    }
}

/// Parses the header at the start of `buf`: `Ok(None)` while it is incomplete, else the header and
/// its length in bytes. Checks everything a header alone can violate (see [`HeaderError`]); the
/// caller checks the mask against its role and the length against its limits.
pub fn parse_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, HeaderError> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    if b0 & 0x70 != 0 {
        return Err(HeaderError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = match b0 & 0x0F {
        0x0 => OpCode::Continuation,
        0x1 => OpCode::Text,
        0x2 => OpCode::Binary,
        0x8 => OpCode::Close,
        0x9 => OpCode::Ping,
        0xA => OpCode::Pong,
        _ => return Err(HeaderError::UnknownOpcode),
    };
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    if opcode.is_control() {
        // Checked on the first two bytes so a bad control frame fails before its length arrives.
        if !fin {
            return Err(HeaderError::FragmentedControl);
        }
        if usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(HeaderError::ControlTooLong);
        }
    }
    let (len, mut at) = match len7 {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(b);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(HeaderError::LengthMsb);
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        match buf.get(at..at + 4) {
            Some(k) => {
                at += 4;
                Some([k[0], k[1], k[2], k[3]])
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some((
        FrameHeader {
            fin,
            opcode,
            mask,
            len,
        },
        at,
    )))
}

/// Appends a header to `out`, with the shortest length encoding (RFC 6455 §5.2 requires it).
pub fn write_header(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    len: usize,
) {
    let b0 = if fin { 0x80 } else { 0 } | opcode.bits();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        // Fits in 7 bits: `len < 126` was just checked.
        out.extend_from_slice(&[b0, mask_bit | len as u8]);
    } else if let Ok(len16) = u16::try_from(len) {
        out.extend_from_slice(&[b0, mask_bit | 126]);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.extend_from_slice(&[b0, mask_bit | 127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// XORs `data` with the repeating 4-byte `key`, starting at key byte 0. Masking and unmasking are
/// the same operation. Works on 8-byte words (the compiler vectorises the loop); only the last
/// 0–7 bytes go one at a time.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let key64 = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let masked = u64::from_ne_bytes(word) ^ key64;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    // Every full chunk is 8 bytes, a multiple of 4, so the tail starts at key byte 0 again.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4 and the IANA registry):
/// 1000–1003, 1007–1014 and the application/library ranges 3000–4999. Refused: below 1000,
/// 1004 (reserved), 1005/1006/1015 (local-only meanings), the unassigned 1016–2999 and 5000 up.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Why a close frame's payload is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseError {
    /// A 1-byte payload: a status code needs two.
    OneByte,
    /// A status code not allowed on the wire (see [`is_valid_close_code`]).
    BadCode(u16),
    /// The reason is not UTF-8.
    BadReason,
}

impl CloseError {
    /// A short, fixed description for error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseError::OneByte => "close frame with a 1-byte payload",
            CloseError::BadCode(_) => "close frame with an invalid status code",
            CloseError::BadReason => "close frame reason is not valid UTF-8",
        }
    }
}

/// Parses a close frame's (unmasked) payload: empty means no status; else a 2-byte code and a
/// UTF-8 reason.
pub fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>, CloseError> {
    match payload {
        [] => Ok(None),
        [_] => Err(CloseError::OneByte),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(CloseError::BadCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| CloseError::BadReason)?;
            Ok(Some((code, reason)))
        }
    }
}

/// The longest prefix of `reason` that fits a close frame beside its 2-byte code (123 bytes),
/// cut at a character boundary so it stays valid UTF-8.
pub fn truncate_reason(reason: &str) -> &str {
    const MAX: usize = MAX_CONTROL_PAYLOAD - 2;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_mask(data: &mut [u8], key: [u8; 4]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }

    #[test]
    fn mask_matches_bytewise_xor_for_every_length() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..70 {
            let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut fast = original.clone();
            let mut slow = original.clone();
            apply_mask(&mut fast, key);
            naive_mask(&mut slow, key);
            assert_eq!(fast, slow, "length {len}");
            apply_mask(&mut fast, key);
            assert_eq!(fast, original, "round trip at length {len}");
        }
    }

    #[test]
    fn rfc_masked_hello_example() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = parse_header(&frame).unwrap().unwrap();
        assert_eq!(n, 6);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(h.len, 5);
        let mut payload = frame[n..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap());
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn header_round_trips_for_each_length_encoding() {
        for &(len, header_len) in &[
            (0usize, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 20, 10),
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                write_header(&mut out, true, OpCode::Binary, mask, len);
                let expected = header_len + if mask.is_some() { 4 } else { 0 };
                assert_eq!(out.len(), expected, "len {len}");
                // Every strict prefix is incomplete, not an error.
                for cut in 0..out.len() {
                    assert_eq!(parse_header(&out[..cut]), Ok(None), "len {len} cut {cut}");
                }
                let (h, n) = parse_header(&out).unwrap().unwrap();
                assert_eq!(n, out.len());
                assert_eq!(h.len, len as u64);
                assert_eq!(h.mask, mask);
                assert_eq!(h.opcode, OpCode::Binary);
                assert!(h.fin);
            }
        }
    }

    #[test]
    fn header_refusals() {
        assert_eq!(parse_header(&[0xC1, 0x00]), Err(HeaderError::ReservedBits));
        assert_eq!(parse_header(&[0xA1, 0x00]), Err(HeaderError::ReservedBits));
        assert_eq!(parse_header(&[0x91, 0x00]), Err(HeaderError::ReservedBits));
        for op in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                parse_header(&[0x80 | op, 0x00]),
                Err(HeaderError::UnknownOpcode)
            );
        }
        assert_eq!(
            parse_header(&[0x09, 0x00]),
            Err(HeaderError::FragmentedControl)
        );
        assert_eq!(parse_header(&[0x89, 126]), Err(HeaderError::ControlTooLong));
        assert_eq!(
            parse_header(&[0x88, 0x80 | 127]),
            Err(HeaderError::ControlTooLong)
        );
        assert!(parse_header(&[0x89, 125]).unwrap().is_some());
        let mut big = vec![0x82, 127];
        big.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(parse_header(&big), Err(HeaderError::LengthMsb));
    }

    #[test]
    fn close_payloads() {
        assert_eq!(parse_close(&[]), Ok(None));
        assert_eq!(parse_close(&[0x03]), Err(CloseError::OneByte));
        let mut ok = 1000u16.to_be_bytes().to_vec();
        ok.extend_from_slice("bye ✓".as_bytes());
        assert_eq!(parse_close(&ok), Ok(Some((1000, "bye ✓"))));
        for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert_eq!(
                parse_close(&bad.to_be_bytes()),
                Err(CloseError::BadCode(bad)),
                "{bad}"
            );
        }
        for good in [1000u16, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert_eq!(
                parse_close(&good.to_be_bytes()),
                Ok(Some((good, ""))),
                "{good}"
            );
        }
        assert_eq!(parse_close(&[0x03, 0xE8, 0xFF]), Err(CloseError::BadReason));
    }

    #[test]
    fn reason_truncation_keeps_utf8() {
        let long = "é".repeat(100); // 200 bytes
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123);
        assert_eq!(cut.len(), 122);
        assert_eq!(truncate_reason("short"), "short");
    }
}
