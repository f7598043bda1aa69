//! Percent-encoding, by hand: the gateway needs only three small things from
//! URLs (decode a path segment, split a query, encode a `Link` target), which
//! is less code than a dependency's API surface.

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`, as query
/// strings use it). `None` when an escape is malformed or the bytes are not
/// UTF-8: the caller answers 400 rather than guessing.
pub fn decode(raw: &str, plus_is_space: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes everything but RFC 3986's unreserved characters, so a value is
/// safe anywhere in a path or query.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `a=1&b=x%20y` as decoded pairs, in order. A name without `=` has an empty
/// value; empty pieces (`a=1&&b=2`) are skipped.
pub fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            Some((decode(name, true)?, decode(value, true)?))
        })
        .collect()
}

/// The inverse of [`parse_query`].
pub fn format_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects() {
        assert_eq!(decode("SKU%2D1", false).as_deref(), Some("SKU-1"));
        assert_eq!(decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(decode("a+b", true).as_deref(), Some("a b"));
        assert_eq!(decode("%zz", false), None);
        assert_eq!(decode("%4", false), None);
        assert_eq!(decode("%FF", false), None, "not UTF-8");
        assert_eq!(decode("%C3%A9", false).as_deref(), Some("é"));
    }

    #[test]
    fn query_round_trips() {
        let pairs = parse_query("limit=5&&cursor=a%2Fb+c&flag").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("limit".into(), "5".into()),
                ("cursor".into(), "a/b c".into()),
                ("flag".into(), "".into())
            ]
        );
        assert_eq!(format_query(&pairs), "limit=5&cursor=a%2Fb%20c&flag=");
        assert_eq!(parse_query(&format_query(&pairs)).unwrap(), pairs);
    }
}
