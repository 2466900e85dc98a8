//! Sidecar files (`clip.yaml`, a photo set's `post.yaml`) and folder `defaults`: the fields a
//! user may set for a post, read strictly (unknown fields are errors), merged (sidecar over
//! defaults) and checked against SPEC §3's rules into a [`PostSpec`] ready to be sent.
//!
//! Which files form an item is `items`' business; what the file bytes contain is `media`'s; the
//! exact request JSON is `tiktok::wire`'s. The rules that depend on the creator's live settings
//! (privacy options, max duration) are checked by the publisher, not here.

pub mod rules;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::support::diagnostic::Diagnostic;
use crate::support::yaml;

pub use rules::{PostSpec, Resolved, resolve};

/// Where a post goes: published on the profile, or into the creator's inbox as a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Direct,
    Inbox,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Direct => "direct",
            Mode::Inbox => "inbox",
        })
    }
}

/// TikTok's `privacy_level` values, spelled exactly as the API wants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PrivacyLevel {
    PublicToEveryone,
    MutualFollowFriends,
    FollowerOfCreator,
    SelfOnly,
}

impl PrivacyLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyLevel::PublicToEveryone => "PUBLIC_TO_EVERYONE",
            PrivacyLevel::MutualFollowFriends => "MUTUAL_FOLLOW_FRIENDS",
            PrivacyLevel::FollowerOfCreator => "FOLLOWER_OF_CREATOR",
            PrivacyLevel::SelfOnly => "SELF_ONLY",
        }
    }
}

impl fmt::Display for PrivacyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every field a sidecar (or a folder's `defaults`) may set. All optional; `None` = not set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PostFields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub privacy_level: Option<PrivacyLevel>,
    pub disable_comment: Option<bool>,
    pub disable_duet: Option<bool>,
    pub disable_stitch: Option<bool>,
    pub brand_content_toggle: Option<bool>,
    pub brand_organic_toggle: Option<bool>,
    pub is_aigc: Option<bool>,
    pub cover_timestamp_ms: Option<u32>,
    pub cover_index: Option<u32>,
    pub auto_add_music: Option<bool>,
    pub images: Option<Vec<String>>,
    pub mode: Option<Mode>,
    pub account: Option<String>,
    /// RFC 3339; parsed during [`resolve`] so the error can say what a valid time looks like.
    pub not_before: Option<String>,
}

impl PostFields {
    /// Names of the fields that are set, in declaration order.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let flags = [
            ("title", self.title.is_some()),
            ("description", self.description.is_some()),
            ("privacy_level", self.privacy_level.is_some()),
            ("disable_comment", self.disable_comment.is_some()),
            ("disable_duet", self.disable_duet.is_some()),
            ("disable_stitch", self.disable_stitch.is_some()),
            ("brand_content_toggle", self.brand_content_toggle.is_some()),
            ("brand_organic_toggle", self.brand_organic_toggle.is_some()),
            ("is_aigc", self.is_aigc.is_some()),
            ("cover_timestamp_ms", self.cover_timestamp_ms.is_some()),
            ("cover_index", self.cover_index.is_some()),
            ("auto_add_music", self.auto_add_music.is_some()),
            ("images", self.images.is_some()),
            ("mode", self.mode.is_some()),
            ("account", self.account.is_some()),
            ("not_before", self.not_before.is_some()),
        ];
        flags
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect()
    }
}

/// A parsed sidecar file, with what is needed to point at its lines later.
pub struct Sidecar {
    pub fields: PostFields,
    pub locator: yaml::Locator,
    /// Legal but probably unintended YAML (a hashtag read as a comment).
    pub warnings: Vec<Diagnostic>,
}

/// Reads and parses a sidecar file, reporting every wrong field. An empty file is a valid
/// sidecar with no fields.
pub fn load(path: &Path) -> Result<Sidecar, Vec<Diagnostic>> {
    let text = yaml::read_untrusted(path).map_err(|d| vec![d])?;
    parse(path, &text)
}

/// Parses a sidecar's text (read from `path`, which names it in messages).
pub fn parse(path: &Path, text: &str) -> Result<Sidecar, Vec<Diagnostic>> {
    if text.trim().is_empty() {
        return Ok(Sidecar {
            fields: PostFields::default(),
            locator: yaml::Locator::new(""),
            warnings: Vec::new(),
        });
    }
    let (fields, locator) = yaml::parse_located_all(path, text)?;
    Ok(Sidecar {
        fields,
        locator,
        warnings: hashtag_comments(path, text),
    })
}

/// `title: My trip #travel` reads as "My trip": in YAML, ` #` starts a comment. Users write
/// hashtags there all the time, so an unquoted title or description with ` #` is flagged.
fn hashtag_comments(path: &Path, text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        for key in ["title", "description"] {
            let Some(value) = trimmed
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(':'))
            else {
                continue;
            };
            let value = value.trim_start();
            let quoted = value.starts_with(['"', '\'', '|', '>']);
            if !quoted && (value.contains(" #") || value.starts_with('#')) {
                let column = line.len() - trimmed.len() + 1;
                out.push(
                    Diagnostic::at_key(
                        path,
                        key,
                        format!("everything from ' #' on is a YAML comment, so the {key} loses its hashtags"),
                    )
                    .with_position(i as u64 + 1, column as u64)
                    .with_help(format!("put the {key} in double quotes: {key}: \"...\"")),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A misspelled field is an error with the near match, not a silently ignored key.
    #[test]
    fn unknown_field_suggests_the_right_one() {
        let e = yaml::parse::<PostFields>(Path::new("c.yaml"), "privacy: SELF_ONLY\n")
            .expect_err("unknown");
        assert_eq!(e.key, "privacy");
        assert_eq!(e.help.as_deref(), Some("did you mean 'privacy_level'?"));
    }

    /// Enum values must be spelled as TikTok spells them; a case slip gets a suggestion.
    #[test]
    fn privacy_level_is_strict() {
        let e = yaml::parse::<PostFields>(Path::new("c.yaml"), "privacy_level: self_only\n")
            .expect_err("bad enum");
        assert_eq!(e.key, "privacy_level");
        assert_eq!(e.help.as_deref(), Some("did you mean 'SELF_ONLY'?"));
    }
}
