//! HTTP range requests (`Range: bytes=…`) for streaming recordings. One range per request (what
//! `<audio>` elements and players send); anything else gets the whole file.

/// A byte range to send, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// Bytes in the range (at least one: `start <= end` by construction).
    pub fn byte_count(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: send everything with 200.
    Full,
    /// Send this part with 206.
    Part(ByteRange),
    /// Outside the file: 416.
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full; // multipart ranges: not worth it; the whole file is valid too
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => Some((start, end.min(size.saturating_sub(1)))),
        (Some(start), None) if b.is_empty() => Some((start, size.saturating_sub(1))),
        // `bytes=-0` asks for the last zero bytes: nothing can satisfy it (RFC 9110 §14.1.3).
        (None, Some(0)) if a.is_empty() => return RangeRequest::Unsatisfiable,
        (None, Some(suffix)) if a.is_empty() => {
            Some((size.saturating_sub(suffix), size.saturating_sub(1)))
        }
        _ => return RangeRequest::Full,
    };
    match range {
        Some((start, end)) if size > 0 && start < size && start <= end => {
            RangeRequest::Part(ByteRange { start, end })
        }
        _ => RangeRequest::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Part(ByteRange { start, end })
    }

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 100), RangeRequest::Full);
        assert_eq!(parse(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(parse(Some("bytes=90-"), 100), part(90, 99));
        assert_eq!(parse(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(parse(Some("bytes=-1000"), 100), part(0, 99));
        assert_eq!(parse(Some("bytes=50-5000"), 100), part(50, 99));
        assert_eq!(parse(Some("bytes=100-"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-1,5-6"), 100), RangeRequest::Full);
        assert_eq!(parse(Some("items=0-1"), 100), RangeRequest::Full);
        assert_eq!(parse(Some("bytes=9-3"), 100), RangeRequest::Full);
        assert_eq!(parse(Some("bytes=0-"), 0), RangeRequest::Unsatisfiable);
    }

    #[test]
    fn an_empty_suffix_is_unsatisfiable() {
        assert_eq!(parse(Some("bytes=-0"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes= -0 "), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 0), RangeRequest::Unsatisfiable);
        // A non-empty suffix of an empty file is unsatisfiable too; of a real one, it is a part.
        assert_eq!(parse(Some("bytes=-1"), 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-1"), 100), part(99, 99));
    }
}
