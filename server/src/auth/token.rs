//! API tokens as strings: `atr_` + 32 base62 characters of randomness + a 6-character checksum.
//!
//! The prefix lets secret scanners (and people) recognise a leaked Atrium token; the checksum lets
//! Atrium refuse a mistyped or truncated token without a database lookup. Only the SHA-256 of the whole
//! token is stored: the token is random, so a fast hash is enough (a password hash is for guessable
//! secrets).

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "atr_";
const BODY_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new token. Fails only if the operating system has no randomness to give.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; BODY_LEN];
    getrandom::fill(&mut bytes)?;
    // 62 does not divide 256: drawing again above the last whole multiple keeps characters uniform.
    let mut body = String::with_capacity(BODY_LEN);
    let mut pool = bytes.to_vec();
    while body.len() < BODY_LEN {
        if pool.is_empty() {
            let mut more = [0u8; BODY_LEN];
            getrandom::fill(&mut more)?;
            pool.extend_from_slice(&more);
        }
        let byte = pool.remove(0);
        if byte < 248 {
            body.push(ALPHABET[usize::from(byte % 62)] as char);
        }
    }
    Ok(format!("{PREFIX}{body}{}", checksum(&body)))
}

fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let mut value = u64::from(u32::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ]));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a string is shaped like an Atrium token with a correct checksum.
pub fn is_well_formed(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != BODY_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    checksum(body) == sum
}

/// What is stored: the hex SHA-256 of the whole token.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What lists show: `atr_Ab3x…`.
pub fn display_prefix(token: &str) -> String {
    token.chars().take(PREFIX.len() + 4).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_checksummed() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_ne!(a, b);
        assert!(a.starts_with("atr_"));
        assert_eq!(a.len(), 4 + 32 + 6);
        assert!(is_well_formed(&a) && is_well_formed(&b));
    }

    #[test]
    fn a_mistyped_or_truncated_token_is_not_well_formed() {
        let token = generate().expect("random");
        let mut chars: Vec<char> = token.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(!is_well_formed(&typo));
        assert!(!is_well_formed(&token[..token.len() - 1]));
        assert!(!is_well_formed("ghp_0123456789"));
        assert!(!is_well_formed(&token.replace("atr_", "atx_")));
    }

    #[test]
    fn the_stored_hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
