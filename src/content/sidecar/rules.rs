//! SPEC §3's field rules: which field applies to which item and mode, how sidecar and folder
//! defaults merge, and the limits TikTok enforces (UTF-16 lengths, branded content, cover index,
//! photo-set order). Pure: no file access beyond what the caller already read.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::{Mode, PostFields, PrivacyLevel, Sidecar};
use crate::support::diagnostic::Diagnostic;

/// TikTok's caption limits, in UTF-16 code units (tiktok-api.md §5).
pub const MAX_VIDEO_TITLE: usize = 2200;
pub const MAX_PHOTO_TITLE: usize = 90;
pub const MAX_PHOTO_DESCRIPTION: usize = 4000;
/// Most images in one photo post.
pub const MAX_IMAGES: usize = 35;

/// What kind of post an item makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Video,
    Photo,
    PhotoSet,
}

impl Kind {
    pub fn is_photo(self) -> bool {
        matches!(self, Kind::Photo | Kind::PhotoSet)
    }
}

/// Everything needed to build the init request, after merging and checking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostSpec {
    pub kind: Kind,
    pub account: String,
    pub mode: Mode,
    pub title: Option<String>,
    pub description: Option<String>,
    pub privacy_level: Option<PrivacyLevel>,
    pub disable_comment: bool,
    pub disable_duet: bool,
    pub disable_stitch: bool,
    pub brand_content_toggle: bool,
    pub brand_organic_toggle: bool,
    pub is_aigc: bool,
    pub cover_timestamp_ms: Option<u32>,
    pub cover_index: u32,
    pub auto_add_music: bool,
    /// The media files in posting order (a video or single photo: one name).
    pub files: Vec<String>,
    pub not_before: Option<jiff::Timestamp>,
}

/// The item being resolved: its kind, its files in natural order, its folder's settings.
pub struct Target<'a> {
    pub kind: Kind,
    /// Media file names (a photo set: the images inside its folder, natural order).
    pub files: Vec<String>,
    /// The media file or photo-set folder, for diagnostics when there is no sidecar.
    pub item_path: &'a Path,
    pub folder_mode: Mode,
    pub folder_account: &'a str,
}

/// Outcome of [`resolve`]: a spec when there are no errors, plus warnings either way.
#[derive(Debug)]
pub struct Resolved {
    pub spec: Option<PostSpec>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

enum Fit {
    Yes,
    /// The field has no meaning for this item: an error in a sidecar.
    No(String),
    /// Accepted by the schema but dropped by the endpoint: a warning.
    Dropped(String),
}

fn fit(field: &str, kind: Kind, mode: Mode) -> Fit {
    let video = kind == Kind::Video;
    let inbox = mode == Mode::Inbox;
    let kind_name = match kind {
        Kind::Video => "a video",
        Kind::Photo => "a photo",
        Kind::PhotoSet => "a photo set",
    };
    let not_for_kind = || Fit::No(format!("'{field}' does not apply to {kind_name}"));
    let inbox_only_direct = || {
        Fit::No(format!(
            "'{field}' only applies to direct posts; in inbox mode you choose it in the TikTok app"
        ))
    };
    let dropped = || {
        Fit::Dropped(format!(
            "'{field}' is ignored: TikTok's inbox upload does not take it; set it in the TikTok app when you finish the draft"
        ))
    };
    match field {
        "title" if video && inbox => dropped(),
        "description" if video => not_for_kind(),
        "privacy_level"
        | "disable_comment"
        | "brand_content_toggle"
        | "brand_organic_toggle"
        | "is_aigc"
            if inbox =>
        {
            inbox_only_direct()
        }
        "disable_duet" | "disable_stitch" if !video => not_for_kind(),
        "disable_duet" | "disable_stitch" if inbox => inbox_only_direct(),
        "cover_timestamp_ms" if !video => not_for_kind(),
        "cover_timestamp_ms" if inbox => dropped(),
        "cover_index" | "auto_add_music" if video => not_for_kind(),
        "auto_add_music" if inbox => dropped(),
        "images" if kind != Kind::PhotoSet => Fit::No(format!(
            "'images' only applies to a photo-set folder's post.yaml, not to {kind_name}"
        )),
        _ => Fit::Yes,
    }
}

/// Merges `sidecar` over `defaults` for `target` and checks every rule.
pub fn resolve(defaults: &PostFields, sidecar: Option<(&Path, &Sidecar)>, t: &Target) -> Resolved {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let empty = PostFields::default();
    let side = sidecar.map_or(&empty, |(_, s)| &s.fields);
    let diag_file = sidecar.map_or(t.item_path, |(p, _)| p);
    let at = |key: &str, msg: String| {
        let d = Diagnostic::at_key(diag_file, key, msg);
        match sidecar {
            Some((_, s)) => s.locator.place(d),
            None => d,
        }
    };

    let mode = side.mode.unwrap_or(t.folder_mode);
    let account = side
        .account
        .clone()
        .unwrap_or_else(|| t.folder_account.to_string());

    // Sidecar fields that do not fit the item are errors; dropped ones are warnings.
    for field in side.set_fields() {
        match fit(field, t.kind, mode) {
            Fit::Yes => {}
            Fit::No(msg) => errors.push(at(field, msg).with_help("remove it from the sidecar")),
            Fit::Dropped(msg) => warnings.push(at(field, msg)),
        }
    }
    // Defaults apply only where they fit, silently (SPEC §3).
    let pick = |field: &str| matches!(fit(field, t.kind, mode), Fit::Yes);
    macro_rules! merged {
        ($f:ident) => {
            if pick(stringify!($f)) {
                side.$f.clone().or_else(|| defaults.$f.clone())
            } else {
                None
            }
        };
    }

    let title = merged!(title);
    let description = merged!(description);
    let privacy_level = merged!(privacy_level);
    let brand_content_toggle = merged!(brand_content_toggle).unwrap_or(false);
    let cover_index = merged!(cover_index).unwrap_or(0);
    let source_of = |field: &str, set_in_sidecar: bool| {
        if set_in_sidecar {
            at(field, String::new())
        } else {
            Diagnostic::at_key(t.item_path, field, String::new())
        }
    };

    if !is_valid_account(&account) {
        errors.push(
            at(
                "account",
                format!("'{account}' is not a valid account name"),
            )
            .with_help("use letters, digits, '-' and '_' only (it names the token file)"),
        );
    }
    let title_limit = if t.kind == Kind::Video {
        MAX_VIDEO_TITLE
    } else {
        MAX_PHOTO_TITLE
    };
    for (field, value, limit) in [
        ("title", &title, title_limit),
        ("description", &description, MAX_PHOTO_DESCRIPTION),
    ] {
        if let Some(text) = value {
            let units = text.encode_utf16().count();
            if units > limit {
                let what = if t.kind == Kind::Video {
                    "a video caption"
                } else {
                    "a photo post"
                };
                let mut d = source_of(field, side.set_fields().contains(&field));
                d.message = format!(
                    "the {field} is {units} characters long (counted as TikTok does, in UTF-16 units: an emoji counts 2); TikTok allows {limit} for {what}"
                );
                let over = units - limit;
                let unit = if over == 1 { "character" } else { "characters" };
                errors.push(d.with_help(format!("shorten it by {over} {unit}")));
            }
        }
    }
    if mode == Mode::Direct && privacy_level.is_none() {
        let hint = if t.kind == Kind::PhotoSet {
            "add 'privacy_level: SELF_ONLY' (or another level) to the set's post.yaml or to the folder's defaults in watch.yaml"
        } else {
            "add 'privacy_level: SELF_ONLY' (or another level) to the sidecar or to the folder's defaults in watch.yaml"
        };
        let mut d = Diagnostic::at_key(diag_file, "privacy_level", "");
        d.message = "no privacy_level: a direct post needs one (TikTok has no default)".into();
        errors.push(d.with_help(hint));
    }
    if brand_content_toggle && privacy_level == Some(PrivacyLevel::SelfOnly) {
        let field = if side.brand_content_toggle.is_some() {
            "brand_content_toggle"
        } else {
            "privacy_level"
        };
        let mut d = source_of(field, side.set_fields().contains(&field));
        d.message =
            "branded content (brand_content_toggle: true) cannot be private (SELF_ONLY)".into();
        errors.push(d.with_help(
            "choose another privacy_level, or set brand_content_toggle: false if this is not a paid partnership",
        ));
    }

    let files = order_files(side, t, &at, &mut errors);
    if t.kind.is_photo() && !files.is_empty() && cover_index as usize >= files.len() {
        let mut d = source_of("cover_index", side.cover_index.is_some());
        d.message = format!(
            "cover_index {cover_index} is out of range: this post has {} image(s), so it must be 0 to {}",
            files.len(),
            files.len() - 1
        );
        errors.push(d.with_help("cover_index counts from 0 in posting order"));
    }

    let not_before = match merged!(not_before) {
        None => None,
        Some(text) => match text.parse::<jiff::Timestamp>() {
            Ok(ts) => Some(ts),
            Err(_) => {
                let mut d = source_of("not_before", side.not_before.is_some());
                d.message = format!("'{text}' is not a date and time with a time zone");
                errors.push(d.with_help(
                    "write it in RFC 3339 form, like 2026-12-01T18:00:00+01:00 or 2026-12-01T17:00:00Z",
                ));
                None
            }
        },
    };

    let spec = errors.is_empty().then(|| PostSpec {
        kind: t.kind,
        account,
        mode,
        title,
        description,
        privacy_level,
        disable_comment: merged!(disable_comment).unwrap_or(true),
        disable_duet: merged!(disable_duet).unwrap_or(true),
        disable_stitch: merged!(disable_stitch).unwrap_or(true),
        brand_content_toggle,
        brand_organic_toggle: merged!(brand_organic_toggle).unwrap_or(false),
        is_aigc: merged!(is_aigc).unwrap_or(false),
        cover_timestamp_ms: merged!(cover_timestamp_ms),
        cover_index,
        auto_add_music: merged!(auto_add_music).unwrap_or(false),
        files,
        not_before,
    });
    Resolved {
        spec,
        errors,
        warnings,
    }
}

/// The media files in posting order: the set's `images:` list when given (checked against the
/// folder), otherwise the natural order the caller found them in.
fn order_files(
    side: &PostFields,
    t: &Target,
    at: &dyn Fn(&str, String) -> Diagnostic,
    errors: &mut Vec<Diagnostic>,
) -> Vec<String> {
    if t.kind != Kind::PhotoSet {
        return t.files.clone();
    }
    let present: BTreeSet<&str> = t.files.iter().map(String::as_str).collect();
    let files = match &side.images {
        None => t.files.clone(),
        Some(list) => {
            let mut seen = BTreeSet::new();
            for (i, name) in list.iter().enumerate() {
                let key = format!("images[{i}]");
                if !seen.insert(name.as_str()) {
                    errors.push(
                        at(&key, format!("'{name}' is listed twice"))
                            .with_help("list each image once"),
                    );
                } else if !present.contains(name.as_str()) {
                    let d = at(&key, format!("'{name}' is not an image in this folder"));
                    errors.push(d.with_help(format!(
                        "the folder holds: {}; names are relative to the set's folder",
                        t.files.join(", ")
                    )));
                }
            }
            let unlisted: Vec<&str> = present.difference(&seen).copied().collect();
            if !unlisted.is_empty() {
                errors.push(
                    at(
                        "images",
                        format!(
                            "the folder has images that 'images' does not list: {}",
                            unlisted.join(", ")
                        ),
                    )
                    .with_help("list every image (so nothing is left out by mistake), or remove the extra files"),
                );
            }
            list.clone()
        }
    };
    if files.is_empty() {
        errors.push(
            Diagnostic::at_key(t.item_path, "", "the photo-set folder holds no images")
                .with_help("put 1 to 35 .jpg/.jpeg/.webp images in it"),
        );
    } else if files.len() > MAX_IMAGES {
        errors.push(
            Diagnostic::at_key(
                t.item_path,
                "",
                format!(
                    "the photo set has {} images; TikTok takes at most {MAX_IMAGES} per post",
                    files.len()
                ),
            )
            .with_help("split it into several folders"),
        );
    }
    files
}

/// Account names become token file names: keep them boring.
pub fn is_valid_account(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Natural order of file names: `2.jpg` before `10.jpg`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                let nb = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
                let (da, db) = (
                    a[..na].trim_start_matches('0'),
                    b[..nb].trim_start_matches('0'),
                );
                let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                let ord = x.cmp(&y);
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a = &a[x.len_utf8()..];
                b = &b[y.len_utf8()..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: Kind, files: &[&str], mode: Mode) -> Target<'static> {
        Target {
            kind,
            files: files.iter().map(|s| s.to_string()).collect(),
            item_path: Path::new("inbox/item"),
            folder_mode: mode,
            folder_account: "default",
        }
    }

    fn fields(yaml: &str) -> PostFields {
        crate::support::yaml::parse(Path::new("t.yaml"), yaml).expect("valid test yaml")
    }

    /// Natural order puts 2 before 10 and compares text normally otherwise.
    #[test]
    fn natural_order() {
        let mut v = vec!["10.jpg", "2.jpg", "1.jpg", "b.jpg", "a10.jpg", "a9.jpg"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["1.jpg", "2.jpg", "10.jpg", "a9.jpg", "a10.jpg", "b.jpg"]
        );
    }

    /// Interactions stay off unless allowed, the sidecar wins over defaults, and defaults that do
    /// not fit the item are ignored without complaint.
    #[test]
    fn merge_defaults_under_sidecar() {
        let defaults = fields("privacy_level: SELF_ONLY\ndisable_comment: false\ndescription: d\n");
        let r = resolve(
            &defaults,
            None,
            &target(Kind::Video, &["a.mp4"], Mode::Direct),
        );
        let spec = r.spec.expect("valid");
        assert_eq!(spec.privacy_level, Some(PrivacyLevel::SelfOnly));
        assert!(!spec.disable_comment);
        assert!(spec.disable_duet && spec.disable_stitch);
        assert_eq!(
            spec.description, None,
            "description default ignored for a video"
        );
    }

    /// Emoji count as two UTF-16 units: 1100 emoji fill a video caption exactly, 46 overflow a
    /// photo title.
    #[test]
    fn title_limits_count_utf16() {
        let d = PostFields::default();
        let mut t = target(Kind::Video, &["a.mp4"], Mode::Direct);
        let ok = PostFields {
            title: Some("😀".repeat(1100)),
            privacy_level: Some(PrivacyLevel::SelfOnly),
            ..Default::default()
        };
        let side = Sidecar {
            fields: ok,
            locator: crate::support::yaml::Locator::new(""),
            warnings: Vec::new(),
        };
        let r = resolve(&d, Some((Path::new("a.yaml"), &side)), &t);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        t.kind = Kind::Photo;
        let long = Sidecar {
            fields: PostFields {
                title: Some("😀".repeat(46)),
                privacy_level: Some(PrivacyLevel::SelfOnly),
                ..Default::default()
            },
            locator: crate::support::yaml::Locator::new(""),
            warnings: Vec::new(),
        };
        let r = resolve(&d, Some((Path::new("a.yaml"), &long)), &t);
        assert_eq!(r.errors.len(), 1);
        assert!(
            r.errors[0].message.contains("92 characters"),
            "{}",
            r.errors[0]
        );
    }
}
