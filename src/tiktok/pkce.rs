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
    /// A fresh verifier from the OS RNG, with TikTok's hex challenge.
    pub fn generate() -> Result<Self, RandomError> {
        Self::generate_with(ChallengeEncoding::Hex)
    }

    /// A fresh verifier with its challenge written as `encoding` says.
    pub fn generate_with(encoding: ChallengeEncoding) -> Result<Self, RandomError> {
        let verifier = random_unreserved(VERIFIER_LEN)?;
        let challenge = encoding.challenge(&verifier);
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

/// How the challenge is written (`tiktok.pkce_challenge`): TikTok documents lowercase hex for
/// the desktop flow; whether a Web app wants RFC 7636's base64url is not settled
/// (tiktok-api.md §3.3, §13), so both are offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeEncoding {
    #[default]
    Hex,
    Base64url,
}

impl ChallengeEncoding {
    pub fn challenge(self, verifier: &str) -> String {
        match self {
            Self::Hex => challenge(verifier),
            Self::Base64url => base64url(&Sha256::digest(verifier.as_bytes())),
        }
    }
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n =
            group.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - group.len()));
        for i in 0..=group.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
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
        getrandom::getrandom(&mut buf).map_err(|e| RandomError(e.to_string()))?;
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
    getrandom::getrandom(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 7636 appendix-B verifier gives the hex challenge tiktok-api.md §3.3 lists,
    /// and RFC 7636's own base64url challenge.
    #[test]
    fn challenge_matches_the_test_vector() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            challenge(v),
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3"
        );
        assert_eq!(ChallengeEncoding::Hex.challenge(v), challenge(v));
        assert_eq!(
            ChallengeEncoding::Base64url.challenge(v),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
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
