//! `Secret`: a string that must never reach a log, an error message or `Debug` output (client
//! secret, access and refresh tokens, authorization codes, PKCE verifiers). Reading the value
//! takes an explicit [`Secret::expose`], so every place that sends one over the wire is greppable.

use std::fmt;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

/// A secret string. `Debug` and `Display` print `[redacted]`; there is deliberately no
/// `Serialize` impl, so a secret cannot end up in JSON by accident (the token file serializes
/// through [`Secret::serialize_exposed`], by name).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for putting on the wire or into the token file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short, non-reversible tag (first 8 hex digits of SHA-256) that tells two secrets apart
    /// in logs and keys maps without holding the value itself.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..4])
    }

    /// `serialize_with` helper for the one place that must write the value (the token file).
    pub fn serialize_exposed<S: serde::Serializer>(
        secret: &Secret,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&secret.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Neither formatting trait shows the value, in any nesting.
    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("act.MARKER");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert!(!format!("{:?}", Some(vec![s.clone()])).contains("MARKER"));
        assert_eq!(s.expose(), "act.MARKER");
    }

    /// The fingerprint is stable, short and not the value.
    #[test]
    fn fingerprint_is_short_and_stable() {
        let a = Secret::new("rft.one");
        assert_eq!(a.fingerprint(), Secret::new("rft.one").fingerprint());
        assert_ne!(a.fingerprint(), Secret::new("rft.two").fingerprint());
        assert_eq!(a.fingerprint().len(), 8);
    }
}
