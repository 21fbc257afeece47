//! Integers in decimal without an allocation or `fmt`'s machinery, for messages built per frame.

/// `n` in decimal, written at the end of `digits`.
///
/// ```
/// let mut digits = [0u8; 20];
/// assert_eq!(verbio::wire::decimal::decimal(1_250, &mut digits), "1250");
/// ```
pub fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &str {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits only.
    std::str::from_utf8(&digits[at..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_width_comes_out_as_to_string_says() {
        let mut digits = [0u8; 20];
        for n in [0, 7, 10, 99, 1_000_000, u64::MAX] {
            assert_eq!(super::decimal(n, &mut digits), n.to_string());
        }
    }
}
