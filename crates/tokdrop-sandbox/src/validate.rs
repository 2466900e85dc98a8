//! TikTok's checks on an init body (tiktok-api.md §4.2–4.6, §5), as a pure function of the
//! body, the knobs, the creator and the caller's scopes: scope, field types and limits,
//! privacy options, unaudited mode, URL ownership and chunk rules. Caps and rate limits need
//! the emulator's state and are checked by [`super::posting`].

use serde_json::Value;

use super::chunks::UploadPlan;
use super::config::{AccountConfig, SandboxConfig, SandboxEndpoint};

/// An init TikTok accepts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Accepted {
    pub direct: bool,
    pub photo: bool,
    pub source: Source,
    pub privacy_level: Option<String>,
    pub title: Option<String>,
    /// Fields the endpoint ignores (they were sent, TikTok drops them).
    pub dropped_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Source {
    Pull(Vec<String>),
    Upload(UploadPlan),
}

/// An init TikTok refuses: error code, message, documented HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Rejection {
    pub code: String,
    pub message: String,
    pub status: u16,
}

fn reject(code: &str, status: u16, message: impl Into<String>) -> Rejection {
    Rejection {
        code: code.into(),
        message: message.into(),
        status,
    }
}

struct Checker<'a> {
    config: &'a SandboxConfig,
    account: &'a AccountConfig,
}

impl Checker<'_> {
    fn invalid(&self, message: impl Into<String>) -> Rejection {
        reject(&self.config.invalid_param_code, 400, message)
    }

    fn object<'v>(&self, body: &'v Value, key: &str) -> Result<&'v Value, Rejection> {
        body.get(key)
            .filter(|v| v.is_object())
            .ok_or_else(|| self.invalid(format!("{key} is required")))
    }

    fn string(&self, obj: &Value, key: &str) -> Result<Option<String>, Rejection> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.invalid(format!("{key} must be a string"))),
        }
    }

    fn bool(&self, obj: &Value, key: &str, required: bool) -> Result<(), Rejection> {
        match obj.get(key) {
            None | Some(Value::Null) if required => Err(self.invalid(format!("{key} is required"))),
            None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
            Some(_) => Err(self.invalid(format!("{key} must be a boolean"))),
        }
    }

    fn u64(&self, obj: &Value, key: &str) -> Result<u64, Rejection> {
        obj.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.invalid(format!("{key} is required and must be an integer")))
    }

    fn text(&self, obj: &Value, key: &str, max_utf16: usize) -> Result<Option<String>, Rejection> {
        let text = self.string(obj, key)?;
        if let Some(t) = &text
            && t.encode_utf16().count() > max_utf16
        {
            return Err(self.invalid(format!(
                "{key} is longer than {max_utf16} UTF-16 code units"
            )));
        }
        Ok(text)
    }

    /// `privacy_level` present and among the creator's options; unaudited rules after it.
    fn privacy(&self, post_info: &Value) -> Result<String, Rejection> {
        let level = self.string(post_info, "privacy_level")?;
        let options = self.account.privacy_options();
        let Some(level) = level.filter(|l| options.contains(l)) else {
            return Err(reject(
                "privacy_level_option_mismatch",
                403,
                "privacy_level is missing or not one of the creator's privacy_level_options",
            ));
        };
        if !self.config.audited && (level != "SELF_ONLY" || !self.account.private_account) {
            return Err(reject(
                "unaudited_client_can_only_post_to_private_accounts",
                403,
                "Unaudited clients can only post SELF_ONLY content to private accounts",
            ));
        }
        Ok(level)
    }

    /// A PULL_FROM_URL URL: https on a verified prefix (tiktok-api.md §4.6).
    fn url(&self, url: &str) -> Result<(), Rejection> {
        let parsed = url::Url::parse(url).map_err(|_| self.invalid("the media URL is invalid"))?;
        if !self.config.allow_ip_hosts
            && matches!(parsed.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
        {
            return Err(self.invalid("the media URL's host must be a domain"));
        }
        let verified = parsed.scheme() == "https"
            && self
                .config
                .verified_url_prefixes
                .iter()
                .any(|p| url.starts_with(p.as_str()));
        if !verified {
            return Err(reject(
                "url_ownership_unverified",
                403,
                "The domain or URL prefix of the media is not verified for this app",
            ));
        }
        Ok(())
    }

    fn video_source(&self, source_info: &Value) -> Result<Source, Rejection> {
        match self.string(source_info, "source")?.as_deref() {
            Some("PULL_FROM_URL") => {
                let url = self
                    .string(source_info, "video_url")?
                    .ok_or_else(|| self.invalid("video_url is required for PULL_FROM_URL"))?;
                self.url(&url)?;
                Ok(Source::Pull(vec![url]))
            }
            Some("FILE_UPLOAD") => {
                let plan = UploadPlan {
                    video_size: self.u64(source_info, "video_size")?,
                    chunk_size: self.u64(source_info, "chunk_size")?,
                    total_chunk_count: self.u64(source_info, "total_chunk_count")?,
                };
                plan.check(self.config.chunk_rule_scale)
                    .map_err(|m| self.invalid(m))?;
                Ok(Source::Upload(plan))
            }
            _ => Err(self.invalid("source must be PULL_FROM_URL or FILE_UPLOAD")),
        }
    }
}

fn scope_missing(scope: &str) -> Rejection {
    reject(
        "scope_not_authorized",
        401,
        format!("The user did not authorize the scope required: {scope}"),
    )
}

/// Checks an init body for `endpoint` (one of the three init endpoints).
pub(super) fn check_init(
    endpoint: SandboxEndpoint,
    body: &Value,
    scopes: &[String],
    config: &SandboxConfig,
    account: &AccountConfig,
) -> Result<Accepted, Rejection> {
    let c = Checker { config, account };
    let has = |s: &str| scopes.iter().any(|g| g == s);
    if !body.is_object() {
        return Err(c.invalid("the request body must be a JSON object"));
    }
    match endpoint {
        SandboxEndpoint::VideoInit => {
            if !has("video.publish") {
                return Err(scope_missing("video.publish"));
            }
            let post_info = c.object(body, "post_info")?;
            let title = c.text(post_info, "title", 2200)?;
            for key in [
                "disable_duet",
                "disable_comment",
                "disable_stitch",
                "is_aigc",
            ] {
                c.bool(post_info, key, false)?;
            }
            c.bool(post_info, "brand_organic_toggle", false)?;
            c.bool(post_info, "brand_content_toggle", true)?;
            let privacy = c.privacy(post_info)?;
            let source = c.video_source(c.object(body, "source_info")?)?;
            Ok(Accepted {
                direct: true,
                photo: false,
                source,
                privacy_level: Some(privacy),
                title,
                dropped_fields: Vec::new(),
            })
        }
        SandboxEndpoint::InboxVideoInit => {
            if !has("video.upload") {
                return Err(scope_missing("video.upload"));
            }
            let source = c.video_source(c.object(body, "source_info")?)?;
            let mut dropped: Vec<String> = body
                .as_object()
                .map(|m| m.keys().filter(|k| *k != "source_info").cloned().collect())
                .unwrap_or_default();
            dropped.sort();
            Ok(Accepted {
                direct: false,
                photo: false,
                source,
                privacy_level: None,
                title: None,
                dropped_fields: dropped,
            })
        }
        _ => check_content(&c, body, &has),
    }
}

fn check_content(
    c: &Checker<'_>,
    body: &Value,
    has: &dyn Fn(&str) -> bool,
) -> Result<Accepted, Rejection> {
    let direct = match c.string(body, "post_mode")?.as_deref() {
        Some("DIRECT_POST") => true,
        Some("MEDIA_UPLOAD") => false,
        _ => return Err(c.invalid("post_mode must be DIRECT_POST or MEDIA_UPLOAD")),
    };
    let scope = if direct {
        "video.publish"
    } else {
        "video.upload"
    };
    if !has(scope) {
        return Err(scope_missing(scope));
    }
    if c.string(body, "media_type")?.as_deref() != Some("PHOTO") {
        return Err(c.invalid("media_type must be PHOTO"));
    }
    c.bool(body, "is_aigc", false)?;
    let post_info = c.object(body, "post_info")?;
    let title = c.text(post_info, "title", 90)?;
    c.text(post_info, "description", 4000)?;
    let privacy = if direct {
        c.bool(post_info, "disable_comment", false)?;
        c.bool(post_info, "auto_add_music", false)?;
        c.bool(post_info, "brand_content_toggle", true)?;
        c.bool(post_info, "brand_organic_toggle", true)?;
        Some(c.privacy(post_info)?)
    } else {
        None
    };
    let source_info = c.object(body, "source_info")?;
    if c.string(source_info, "source")?.as_deref() != Some("PULL_FROM_URL") {
        return Err(c.invalid("photos can only be posted with PULL_FROM_URL"));
    }
    let images: Vec<String> = source_info
        .get("photo_images")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if images.is_empty() || images.len() > 35 {
        return Err(c.invalid("photo_images must hold 1 to 35 URLs"));
    }
    let cover = c.u64(source_info, "photo_cover_index")?;
    if cover >= images.len() as u64 {
        return Err(c.invalid("photo_cover_index is out of range"));
    }
    for url in &images {
        c.url(url)?;
    }
    Ok(Accepted {
        direct,
        photo: true,
        source: Source::Pull(images),
        privacy_level: privacy,
        title,
        dropped_fields: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
