//! Login Kit's PKCE as TikTok documents it (tiktok-api.md §3.3): a verifier of 43–128
//! unreserved characters, and a challenge that is the **lowercase hex** SHA-256 of it (TikTok's
//! desktop flow), or, behind a knob, RFC 7636's base64url SHA-256. Plus the emulator's random
//! strings.

use sha2::{Digest, Sha256};

const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `hex(sha256(verifier))`, lowercase, 64 characters.
pub fn hex_challenge(verifier: &str) -> String {
    hex::encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636's `BASE64URL(SHA256(verifier))` without padding, 43 characters.
pub fn base64url_challenge(verifier: &str) -> String {
    let digest = Sha256::digest(verifier.as_bytes());
    let mut out = String::with_capacity(43);
    for group in digest.chunks(3) {
        let bits =
            group.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - group.len()));
        for i in 0..=group.len() {
            out.push(BASE64URL[((bits >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// 43–128 characters from `[A-Za-z0-9-._~]`.
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| UNRESERVED.contains(&b))
}

/// `len` random unreserved characters; falls back to the clock if the OS has no randomness
/// (good enough for an emulator's tokens).
pub fn random_string(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        if getrandom::getrandom(&mut buf).is_err() {
            let nanos = jiff::Timestamp::now().as_nanosecond().unsigned_abs();
            buf.iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = (nanos >> (i % 16)) as u8 ^ i as u8);
        }
        // 66 characters: drop bytes above 197 so none is favoured.
        for &b in buf.iter().filter(|&&b| b < 198) {
            if out.len() == len {
                break;
            }
            out.push(UNRESERVED[usize::from(b) % UNRESERVED.len()] as char);
        }
    }
    out
}

/// A random `u64`.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::getrandom(&mut buf).is_err() {
        return jiff::Timestamp::now().as_nanosecond().unsigned_abs() as u64;
    }
    u64::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tiktok-api.md §3.3's test vector (RFC 7636 appendix B's verifier), both encodings.
    #[test]
    fn test_vector() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            hex_challenge(v),
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3"
        );
        assert_eq!(
            base64url_challenge(v),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(valid_verifier(v));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}!", "a".repeat(50))));
    }

    /// Random strings have the asked length and only unreserved characters.
    #[test]
    fn random_strings() {
        let s = random_string(100);
        assert_eq!(s.len(), 100);
        assert!(valid_verifier(&s));
        assert_ne!(random_string(32), random_string(32));
    }
}
