//! The offline look at one item that both `tokdrop check` and the service use before a
//! claim: pairing problems, the sidecar, media structure and TikTok's file limits, field
//! rules, resolved into the post to send.

use std::path::Path;

use crate::config::WatchConfig;
use crate::content::media;
use crate::content::sidecar;
use crate::content::sidecar::rules::{PostSpec, Target};
use crate::lifecycle::items::ItemFiles;
use crate::support::diagnostic::Diagnostic;

/// Everything the offline rules say about one item: the post to send when it is valid.
pub struct Inspection {
    pub spec: Option<PostSpec>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub media: Vec<media::MediaInfo>,
}

/// Runs every offline rule on one item: pairing problems, sidecar, media structure and
/// TikTok's file limits, field rules. Used by `check` and by the service before a claim.
pub fn inspect(w: &WatchConfig, item: &ItemFiles) -> Inspection {
    inspect_probed(w, item, &[])
}

/// [`inspect`], reusing what a content check just read of some media files (`probed`, each
/// file with its info) instead of reading them again.
pub fn inspect_probed(
    w: &WatchConfig,
    item: &ItemFiles,
    probed: &[(std::path::PathBuf, media::MediaInfo)],
) -> Inspection {
    let mut errors = item.problems.clone();
    let mut warnings = Vec::new();
    let loaded = match &item.sidecar {
        Some(p) => match sidecar::load(p) {
            Ok(s) => {
                warnings.extend(s.warnings.iter().cloned());
                Some((p.as_path(), s))
            }
            Err(problems) => {
                errors.extend(problems);
                None
            }
        },
        None => None,
    };
    let mut infos = Vec::new();
    for file in &item.media {
        let known = probed
            .iter()
            .find(|(p, _)| p == file)
            .map(|(_, i)| i.clone());
        match known.map_or_else(|| media::probe(file), Ok) {
            Ok(info) => {
                for v in media::check_limits(&info, &file_name(file)) {
                    errors.push(Diagnostic::file(file, v.message.clone()).with_help(v.fix.clone()));
                }
                infos.push(info);
            }
            Err(e) => errors.push(media_diagnostic(file, &e)),
        }
    }
    let target = Target {
        kind: item.kind,
        files: item.media.iter().map(|m| file_name(m)).collect(),
        item_path: &item.path,
        folder_mode: w.mode,
        folder_account: &w.account,
    };
    let sidecar_failed = item.sidecar.is_some() && loaded.is_none();
    let resolved = sidecar::resolve(&w.defaults, loaded.as_ref().map(|(p, s)| (*p, s)), &target);
    warnings.extend(resolved.warnings);
    if !sidecar_failed {
        errors.extend(resolved.errors);
    }
    let spec = resolved.spec.filter(|_| errors.is_empty());
    if let (Some(spec), Some(info)) = (&spec, infos.first())
        && let (Some(cover), Some(dur)) = (spec.cover_timestamp_ms, info.duration_ms)
        && u64::from(cover) > dur
    {
        warnings.push(Diagnostic::at_key(
            &item.path,
            "cover_timestamp_ms",
            format!(
                "cover_timestamp_ms {cover} is past the end of the video ({dur} ms); TikTok will use the first frame"
            ),
        ));
    }
    Inspection {
        spec,
        errors,
        warnings,
        media: infos,
    }
}

fn media_diagnostic(file: &Path, e: &media::MediaError) -> Diagnostic {
    let help = match e {
        media::MediaError::Incomplete { .. } => {
            "if it is still being copied, wait; otherwise export or copy it again"
        }
        media::MediaError::NotRecognized { .. } => {
            "export it again as MP4/MOV/WebM (video) or JPEG/WebP (photo), with the matching extension"
        }
        media::MediaError::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            "put the real file there instead (a copy, not a link, pipe or device)"
        }
        media::MediaError::Io(_) => "check the file's permissions",
        media::MediaError::Unsupported { .. } => "rename or convert it to a supported format",
    };
    Diagnostic::file(file, e.to_string()).with_help(help)
}

pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}
