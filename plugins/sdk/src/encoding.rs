//! The encodings signatures are sent in: hex, standard base64 and URL-safe base64.

use alloc::string::String;
use alloc::vec::Vec;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Lower-case hex.
pub fn hex(input: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(input.len() * 2);
    for b in input {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Standard base64 with padding.
pub fn base64(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(BASE64[(n >> 18) as usize & 63] as char);
        out.push(BASE64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            BASE64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            BASE64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// URL-safe base64 without padding (RFC 4648 §5), as JSON Web Tokens use.
pub fn base64url(input: &[u8]) -> String {
    base64(input)
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect()
}

/// `application/x-www-form-urlencoded` encoding of one value, as OAuth 2.0 wants a client's id
/// and secret encoded before they are joined for HTTP Basic (RFC 6749 §2.3.1).
pub fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&alloc::format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes standard base64 (padding optional, no whitespace); `None` if it is not base64.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let digits = input.trim_end_matches('=').as_bytes();
    if input.len() - digits.len() > 2 || digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in digits {
        let value = BASE64.iter().position(|&d| d == c)? as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_both_ways() {
        for (raw, encoded) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"api:key", "YXBpOmtleQ=="),
        ] {
            assert_eq!(base64(raw), encoded);
            assert_eq!(base64_decode(encoded).as_deref(), Some(raw));
        }
        assert_eq!(base64_decode("Zm9v!"), None);
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(form_urlencode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }
}
