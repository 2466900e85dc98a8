//! PKCE and OAuth `state` values (tiktok-api.md §3.3). TikTok's desktop flow deviates from
//! RFC 7636: the challenge is the **lowercase hex** SHA-256 of the verifier, not base64url.

use sha2::{Digest, Sha256};

use super::secret::Secret;

/// RFC 7636 §4.1 "unreserved" characters, the only ones a verifier may hold.
const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
/// Verifier length tokdrop generates (43–128 allowed).
const VERIFIER_LEN: usize = 64;

/// The OS random source failed; nothing sensible can be done but report it.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// A verifier and its challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// Sent with the token exchange; a secret until then.
    pub verifier: Secret,
    /// `hex(sha256(verifier))`, sent on the authorize URL.
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier from the OS RNG.
    pub fn generate() -> Result<Self, RandomError> {
        let verifier = random_unreserved(VERIFIER_LEN)?;
        let challenge = challenge(&verifier);
        Ok(Self {
            verifier: Secret::new(verifier),
            challenge,
        })
    }
}

/// TikTok's challenge for `verifier`: lowercase hex of its SHA-256.
pub fn challenge(verifier: &str) -> String {
    hex::encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is a well-formed PKCE verifier (43–128 unreserved characters).
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| UNRESERVED.contains(&b))
}

/// A random CSRF `state` (32 unreserved characters, 190+ bits).
pub fn random_state() -> Result<String, RandomError> {
    random_unreserved(32)
}

/// `len` characters drawn uniformly from `UNRESERVED` (rejection sampling: bytes above the
/// largest multiple of 66 are discarded so no character is favoured).
pub fn random_unreserved(len: usize) -> Result<String, RandomError> {
    let limit = (256 / UNRESERVED.len() * UNRESERVED.len()) as u8;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
        for &b in buf.iter().filter(|&&b| b < limit) {
            if out.len() == len {
                break;
            }
            out.push(UNRESERVED[usize::from(b) % UNRESERVED.len()] as char);
        }
    }
    Ok(out)
}

/// Random bytes from the OS RNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 7636 appendix-B verifier gives the hex challenge tiktok-api.md §3.3 lists.
    #[test]
    fn challenge_matches_the_test_vector() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3"
        );
    }

    /// Generated verifiers are valid, distinct, and their challenge is 64 lowercase hex digits.
    #[test]
    fn generated_verifiers_are_valid_and_fresh() {
        let a = Pkce::generate().expect("rng");
        let b = Pkce::generate().expect("rng");
        assert!(is_valid_verifier(a.verifier.expose()));
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.challenge.len(), 64);
        assert!(
            a.challenge
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_eq!(a.challenge, challenge(a.verifier.expose()));
    }

    /// Verifier validation follows the 43–128 unreserved-character rule.
    #[test]
    fn verifier_rules() {
        assert!(is_valid_verifier(&"a".repeat(43)));
        assert!(is_valid_verifier(&"~".repeat(128)));
        assert!(!is_valid_verifier(&"a".repeat(42)));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(43))));
        let state = random_state().expect("rng");
        assert_eq!(state.len(), 32);
    }
}
