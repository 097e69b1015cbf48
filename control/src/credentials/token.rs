//! The bearer token: how it is minted, what a stored one must look like, and the check of an
//! `Authorization` header against it.

/// Random bytes in a minted token: 256 bits, beyond any guessing.
const TOKEN_BYTES: usize = 32;

/// Shortest token accepted from the token file, so a hand-edited file cannot silently weaken
/// the only thing standing between the network and the admin user.
const MIN_TOKEN_LEN: usize = 32;

/// Mints a token: 32 bytes from the operating system's RNG as 64 lowercase hex digits, which
/// need no quoting in YAML, shells or headers.
pub(crate) fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The token stored in a token file's `text` (surrounding whitespace, such as the trailing
/// newline an editor adds, is ignored), or why it is unusable.
pub(crate) fn parse(text: &str) -> Result<String, String> {
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "the token has {} characters, at least {MIN_TOKEN_LEN} are required",
            token.len()
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token must be printable ASCII without spaces".to_string());
    }
    Ok(token.to_string())
}

/// Whether `authorization` (the raw header value) is `Bearer <token>`. The scheme is matched
/// case-insensitively (RFC 9110 §11.1), the rest must be exactly the token: no extra spaces and
/// nothing after it. The token comparison takes the same time wherever the first difference
/// is, so response timing does not reveal a prefix of the token.
pub(crate) fn authorizes(token: &str, authorization: Option<&[u8]>) -> bool {
    const SCHEME: &[u8] = b"bearer ";
    let Some(value) = authorization else {
        return false;
    };
    let Some((scheme, presented)) = value.split_at_checked(SCHEME.len()) else {
        return false;
    };
    scheme.eq_ignore_ascii_case(SCHEME) && constant_time_eq(presented, token.as_bytes())
}

/// Compares without an early exit. The length is not secret (every minted token has the same
/// one), so a length mismatch may return at once.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold back into a short-circuiting comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn minted_tokens_are_64_hex_digits_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        assert_eq!(parse(&a).unwrap(), a);
    }

    #[test]
    fn stored_tokens_are_trimmed_and_checked() {
        assert_eq!(parse(&format!("{TOKEN}\n")).unwrap(), TOKEN);
        assert!(parse("").is_err());
        assert!(parse("short").is_err());
        assert!(parse(&format!("{TOKEN} {TOKEN}")).is_err());
        assert!(parse(&format!("{TOKEN}\u{e9}")).is_err());
    }

    #[test]
    fn accepts_exactly_bearer_and_the_token() {
        let header = format!("Bearer {TOKEN}");
        assert!(authorizes(TOKEN, Some(header.as_bytes())));
        let lower = format!("bearer {TOKEN}");
        assert!(authorizes(TOKEN, Some(lower.as_bytes())));
    }

    #[test]
    fn refuses_everything_else() {
        let wrong = TOKEN.replace('0', "1");
        let cases = [
            format!("Bearer {wrong}"),
            format!("Bearer {TOKEN}x"),
            format!("Bearer {TOKEN} "),
            format!("Bearer {TOKEN}\n"),
            format!("Bearer  {TOKEN}"),
            format!("Bearer {}", &TOKEN[..63]),
            format!("Basic {TOKEN}"),
            format!("Token {TOKEN}"),
            format!("Bearer{TOKEN}"),
            TOKEN.to_string(),
            "Bearer ".to_string(),
            "Bearer".to_string(),
            String::new(),
        ];
        for case in &cases {
            assert!(!authorizes(TOKEN, Some(case.as_bytes())), "{case:?}");
        }
        assert!(!authorizes(TOKEN, None));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
