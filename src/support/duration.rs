//! Human-written durations in config files and on the command line: `500ms`, `5s`, `15m`, `2h`,
//! `2d`, or combinations such as `1h30m`. A bare number is refused: "5" could mean anything.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A [`Duration`] read from and written as text like `5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

/// Parses `500ms`, `5s`, `15m`, `2h`, `2d`, `1h30m`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "'{text}' is not a duration: it needs a number and a unit (ms, s, m, h, d), like 500ms, 5s, 15m, 2h or 2d"
        )
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

/// Formats a duration in the largest units that keep it exact (`90s` → `1m30s`).
pub fn format(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    if d.subsec_millis() != 0 && d.as_secs() == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if d.subsec_millis() != 0 {
        out.push_str(&format!("{}ms", d.subsec_millis()));
    }
    out
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse(s).map(HumanDuration)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like 5s or 2h")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse(v).map(HumanDuration).map_err(|e| {
                    E::custom(format!(
                        "{e}{}write it like 500ms, 5s, 15m, 2h or 1h30m",
                        crate::support::yaml::HELP
                    ))
                })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "'{v}' has no unit{}write {v}s, {v}m or {v}h (or {v}ms)",
                    crate::support::yaml::HELP
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "'{v}' is not a duration{}write e.g. 5s or 2h",
                    crate::support::yaml::HELP
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every unit the docs promise parses, combinations add up, and formatting round-trips.
    #[test]
    fn parses_units_and_combinations() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("5s", Duration::from_secs(5)),
            ("15m", Duration::from_secs(900)),
            ("2h", Duration::from_secs(7200)),
            ("2d", Duration::from_secs(172_800)),
            ("1h30m", Duration::from_secs(5400)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
            assert_eq!(parse(&format(want)), Ok(want), "{text} round trip");
        }
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
    }

    /// Bare numbers, unknown units, signs and empty strings are refused with an example.
    #[test]
    fn refuses_ambiguous_or_malformed() {
        for text in ["5", "", "5 sec", "-5s", "s", "5x", "1.5h"] {
            let e = parse(text).expect_err(text);
            assert!(e.contains("like 500ms, 5s, 15m, 2h or 2d"), "{text}: {e}");
        }
    }
}
