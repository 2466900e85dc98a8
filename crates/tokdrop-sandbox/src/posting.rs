//! The Content Posting front door (tiktok-api.md §4.1–4.4): creator_info and the three init
//! endpoints. An init passes the bearer/rate gate, the body checks of [`super::validate`] and
//! the caps (daily posts, pending drafts), then becomes a post whose media the emulator pulls
//! or waits for ([`super::processing`], [`super::upload`]). Every init is recorded with its body.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::time::Instant;

use super::config::{AccountConfig, SandboxConfig, SandboxEndpoint};
use super::processing;
use super::records::{InitRecord, PostRecord};
use super::reply::{self, Caller, Reply, bearer};
use super::state::{Media, Post, Shared, State as Memory, random_digits, random_token};
use super::validate::{self, Accepted, Rejection, Source};

pub(super) async fn creator_info(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    let token = bearer(&headers);
    reply::run(
        &shared,
        SandboxEndpoint::CreatorInfo,
        token.as_deref(),
        async {
            let caller = match shared.authorize_call(token.as_deref(), SandboxEndpoint::CreatorInfo)
            {
                Ok(caller) => caller,
                Err(reply) => return reply,
            };
            if let Err(reply) = shared.require_scope(&caller, &["video.publish"]) {
                return reply;
            }
            let config = shared.config().clone();
            let Some(account) = config.account(&caller.open_id) else {
                return Reply::api_error(401, "access_token_invalid", "The user no longer exists.");
            };
            let spam = {
                let state = shared.state();
                if account.banned_from_posting {
                    Some("spam_risk_user_banned_from_posting")
                } else if state.recent_posts(&account.open_id, |p| p.record.direct)
                    >= config.daily_post_cap as usize
                {
                    Some("spam_risk_too_many_posts")
                } else if !config.audited
                    && state.creator_cap_reached(&account.open_id, config.unaudited_user_cap)
                {
                    Some("reached_active_user_cap")
                } else {
                    None
                }
            };
            if let Some(code) = spam {
                // Documented as HTTP 200 on purpose for creator_info (tiktok-api.md §4.1),
                // the creator cap included.
                return Reply::api_error(
                    config.creator_info_spam_status,
                    code,
                    "The creator cannot post more right now; try again later.",
                );
            }
            let private = account.private_account;
            Reply::ok(json!({
                "creator_avatar_url": account.avatar_url,
                "creator_username": account.username,
                "creator_nickname": account.nickname,
                "privacy_level_options": account.privacy_options(),
                "comment_disabled": account.comment_disabled,
                "duet_disabled": account.duet_disabled || private,
                "stitch_disabled": account.stitch_disabled || private,
                "max_video_post_duration_sec": account.max_video_post_duration_sec,
            }))
        },
    )
    .await
}

pub(super) async fn video_init(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    init(shared, SandboxEndpoint::VideoInit, headers, body).await
}

pub(super) async fn inbox_video_init(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    init(shared, SandboxEndpoint::InboxVideoInit, headers, body).await
}

pub(super) async fn content_init(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    init(shared, SandboxEndpoint::ContentInit, headers, body).await
}

async fn init(
    shared: Arc<Shared>,
    endpoint: SandboxEndpoint,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = bearer(&headers);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    reply::run(&shared, endpoint, token.as_deref(), async {
        let caller = match shared.authorize_call(token.as_deref(), endpoint) {
            Ok(caller) => caller,
            Err(reply) => return reply,
        };
        let outcome = accept(&shared, endpoint, &caller, &body);
        let (code, publish_id, dropped, reply) = match outcome {
            Ok((accepted, publish_id, upload_url)) => {
                let mut data = json!({ "publish_id": publish_id });
                if let Some(url) = upload_url {
                    data["upload_url"] = Value::String(url);
                }
                (
                    "ok".to_string(),
                    Some(publish_id),
                    accepted.dropped_fields,
                    Reply::ok(data),
                )
            }
            Err(r) => (
                r.code.clone(),
                None,
                Vec::new(),
                Reply::api_error(shared.status_for(&r.code, r.status), &r.code, &r.message),
            ),
        };
        let mut state = shared.state();
        let seq = state.next_seq();
        state.records.inits.push(InitRecord {
            seq,
            endpoint,
            at: Timestamp::now(),
            token_fingerprint: Some(caller.fingerprint.clone()),
            open_id: Some(caller.open_id.clone()),
            body: body.clone(),
            code,
            publish_id,
            dropped_fields: dropped,
        });
        reply
    })
    .await
}

/// Validates, checks caps, creates the post and starts its processing.
fn accept(
    shared: &Arc<Shared>,
    endpoint: SandboxEndpoint,
    caller: &Caller,
    body: &Value,
) -> Result<(Accepted, String, Option<String>), Rejection> {
    let mut config = shared.config();
    let account = config
        .account(&caller.open_id)
        .cloned()
        .ok_or_else(|| rejection("access_token_invalid", 401, "The user no longer exists."))?;
    let accepted = validate::check_init(endpoint, body, &caller.scopes, &config, &account)?;
    let mut state = shared.state();
    check_caps(&state, &config, &account, accepted.direct)?;
    let forced_fail =
        (!config.fail_next_posts.is_empty()).then(|| config.fail_next_posts.remove(0));
    let forced_pull_failure =
        matches!(accepted.source, Source::Pull(_)) && config.fail_next_pulls > 0;
    if forced_pull_failure {
        config.fail_next_pulls -= 1;
    }
    let upload_secs = config.upload_url_secs;
    drop(config);

    let pull = matches!(accepted.source, Source::Pull(_));
    let publish_id = new_publish_id(&accepted);
    let (media, upload_url) = new_media(shared, &accepted.source, upload_secs);
    let status = if pull {
        "PROCESSING_DOWNLOAD"
    } else {
        "PROCESSING_UPLOAD"
    };
    let now = Timestamp::now();
    let post = Post {
        record: PostRecord {
            publish_id: publish_id.clone(),
            open_id: caller.open_id.clone(),
            endpoint,
            direct: accepted.direct,
            photo: accepted.photo,
            source: if pull { "PULL_FROM_URL" } else { "FILE_UPLOAD" }.into(),
            privacy_level: accepted.privacy_level.clone(),
            title: accepted.title.clone(),
            status: status.into(),
            fail_reason: None,
            post_ids: Vec::new(),
            uploaded_bytes: 0,
            downloaded_bytes: 0,
            upload_sha256: None,
            media_sha256: Vec::new(),
            created_at: now,
            history: vec![(status.into(), now)],
        },
        media,
        created: Instant::now(),
        cancel: shared.shutdown.child_token(),
        forced_fail,
        forced_pull_failure,
        forgotten: false,
        received: Some(Vec::new()),
    };
    state.posts.push(post);
    drop(state);
    shared.notify();
    if pull {
        processing::spawn(shared.clone(), publish_id.clone());
    }
    tracing::info!(endpoint = endpoint.name(), %publish_id, "sandbox accepted an init");
    Ok((accepted, publish_id, upload_url))
}

/// The 24 h caps (tiktok-api.md §8): direct posts per creator, pending inbox drafts.
fn check_caps(
    state: &Memory,
    config: &SandboxConfig,
    account: &AccountConfig,
    direct: bool,
) -> Result<(), Rejection> {
    if account.banned_from_posting {
        return Err(rejection(
            "spam_risk_user_banned_from_posting",
            403,
            "The user is banned from posting.",
        ));
    }
    let open_id = &account.open_id;
    if direct && !config.audited {
        // An unaudited app may post for a few creators a day (tiktok-api.md §8).
        if state.creator_cap_reached(open_id, config.unaudited_user_cap) {
            return Err(rejection(
                "reached_active_user_cap",
                403,
                "The app's daily quota of posting creators is reached.",
            ));
        }
    }
    if direct {
        if state.recent_posts(open_id, |p| p.record.direct) >= config.daily_post_cap as usize {
            return Err(rejection(
                "spam_risk_too_many_posts",
                403,
                "The daily post limit of this creator is reached.",
            ));
        }
    } else if state.recent_posts(open_id, |p| !p.record.direct && p.record.status != "FAILED")
        >= config.pending_share_cap as usize
    {
        return Err(rejection(
            "spam_risk_too_many_pending_share",
            403,
            "Too many pending shares; at most 5 in 24 hours.",
        ));
    }
    Ok(())
}

/// A publish_id with the prefix TikTok uses for this kind of post (treated as opaque).
fn new_publish_id(accepted: &Accepted) -> String {
    let pull = matches!(accepted.source, Source::Pull(_));
    let prefix = match (accepted.photo, accepted.direct, pull) {
        (true, true, _) => "p_pub_url",
        (true, false, _) => "p_inbox_url",
        (false, true, true) => "v_pub_url",
        (false, true, false) => "v_pub_file",
        (false, false, true) => "v_inbox_url",
        (false, false, false) => "v_inbox_file",
    };
    format!("{prefix}~v2.{}", random_digits(18))
}

/// The post's media and, for FILE_UPLOAD, its upload URL (pointing at the emulator).
fn new_media(shared: &Shared, source: &Source, upload_secs: u64) -> (Media, Option<String>) {
    match source {
        Source::Pull(urls) => (Media::Pull { urls: urls.clone() }, None),
        Source::Upload(plan) => {
            let upload_id = random_digits(12).to_string();
            let upload_token = random_token("", 24);
            let url = format!(
                "{}/upload/?upload_id={upload_id}&upload_token={upload_token}",
                shared.base_url
            );
            let media = Media::Upload {
                plan: *plan,
                upload_id,
                upload_token,
                expires: Instant::now() + Duration::from_secs(upload_secs),
                hasher: Sha256::default(),
            };
            (media, Some(url))
        }
    }
}

fn rejection(code: &str, status: u16, message: &str) -> Rejection {
    Rejection {
        code: code.into(),
        message: message.into(),
        status,
    }
}
