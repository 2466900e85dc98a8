//! Emulator-level behaviour tests: each drives the TikTok emulator over plain HTTP the way a
//! TikTok client would (tiktok-api.md §3, §4, §7, §8, §11) and checks one documented
//! behaviour, switched by its config knob or at runtime through `POST /_sandbox/control`.
//! Tests wait on emulator events (`wait_until`), never on long sleeps.

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use tokdrop_sandbox::config::Platform;
use tokdrop_sandbox::{AccountConfig, Fault, Sandbox, SandboxEndpoint};
use tokio::time::Instant;

use common::*;

const CALLBACK: &str = "http://127.0.0.1:54321/callback/";
const KEY: &str = "sbawtokdropsandbox";
const SECRET: &str = "sandbox-secret";

/// The authorize query of a desktop app: hex PKCE challenge of [`VERIFIER`].
fn authorize_query<'a>(
    scope: &'a str,
    redirect: &'a str,
    state: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_key", KEY),
        ("response_type", "code"),
        ("scope", scope),
        ("redirect_uri", redirect),
        ("state", state),
        ("code_challenge", HEX_CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

/// The authorize step that must redirect with a code: the callback's query.
async fn authorize_ok(
    api: &Api,
    scope: &str,
    redirect: &str,
) -> std::collections::HashMap<String, String> {
    let answer = api
        .authorize(&authorize_query(scope, redirect, "csrf-1"))
        .await;
    assert_eq!(answer.status, 302, "{}", answer.text);
    let location = answer.location();
    assert!(
        location.as_str().starts_with(redirect),
        "{location} is not under {redirect}"
    );
    let query = query_map(&location);
    assert_eq!(query.get("state").map(String::as_str), Some("csrf-1"));
    assert!(!query.contains_key("error"), "{location}");
    query
}

async fn exchange(api: &Api, code: &str, redirect: &str, verifier: &str) -> Answer {
    api.form(
        TOKEN,
        &[
            ("client_key", KEY),
            ("client_secret", SECRET),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh(api: &Api, refresh_token: &str) -> Answer {
    api.form(
        TOKEN,
        &[
            ("client_key", KEY),
            ("client_secret", SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn revoke(api: &Api, access_token: &str) -> Answer {
    api.form(
        REVOKE,
        &[
            ("client_key", KEY),
            ("client_secret", SECRET),
            ("token", access_token),
        ],
    )
    .await
}

/// A flat OAuth error (§2.2): `error`, `error_description`, `log_id`, no envelope.
#[track_caller]
fn assert_flat_error(answer: &Answer, status: u16, error: &str) {
    let body = answer.json();
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(body["error"], error, "{}", answer.text);
    assert!(body["error_description"].is_string(), "{}", answer.text);
    assert!(body["log_id"].is_string(), "{}", answer.text);
    assert!(body.get("data").is_none(), "{}", answer.text);
}

/// Uploads `data` in the plan's chunks, in order; returns the answers.
async fn upload_all(
    api: &Api,
    upload_url: &str,
    data: &[u8],
    chunk_size: usize,
    count: usize,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    for index in 0..count {
        let first = index * chunk_size;
        let end = if index + 1 == count {
            data.len()
        } else {
            first + chunk_size
        };
        answers.push(
            api.put_chunk(
                upload_url,
                first as u64,
                data.len() as u64,
                &data[first..end],
            )
            .await,
        );
    }
    answers
}

fn upload_url(data: &Value) -> String {
    data["upload_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no upload_url in {data}"))
        .to_string()
}

fn account(open_id: &str, private_account: bool) -> AccountConfig {
    AccountConfig {
        open_id: open_id.into(),
        union_id: format!("union-{open_id}"),
        username: format!("user.{open_id}"),
        nickname: format!("Nick {open_id}"),
        private_account,
        ..AccountConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Login Kit platforms and redirect URIs (§3.2–§3.4)
// ---------------------------------------------------------------------------------------------

/// Desktop (the default): the registered `http://127.0.0.1:*/callback/` and
/// `http://localhost:*/callback/` match any port; the 302 carries `code`, `scopes`, `state`.
#[tokio::test]
async fn desktop_authorize_redirects_to_any_loopback_port() {
    let env = Env::start(|_| {}).await;
    for redirect in [
        CALLBACK,
        "http://127.0.0.1:1/callback/",
        "http://localhost:65535/callback/",
    ] {
        let query = authorize_ok(&env.api, "user.info.basic,video.publish", redirect).await;
        assert!(!query["code"].is_empty(), "{redirect}");
        assert_eq!(
            query["scopes"], "user.info.basic,video.publish",
            "{redirect}"
        );
    }
    env.shutdown().await;
}

/// Desktop: an unregistered host, the https variant, a missing port, another path or a
/// missing slash get TikTok's error page (400, no redirect).
#[tokio::test]
async fn desktop_authorize_refuses_unregistered_redirects() {
    let env = Env::start(|_| {}).await;
    for redirect in [
        "http://example.com:54321/callback/",
        "https://127.0.0.1:54321/callback/",
        "http://127.0.0.1/callback/",
        "http://127.0.0.1:54321/other/",
        "http://127.0.0.1:54321/callback",
        "http://[::1]:54321/callback/",
    ] {
        let answer = env
            .api
            .authorize(&authorize_query("user.info.basic", redirect, "s"))
            .await;
        assert_eq!(answer.status, 400, "{redirect}: {}", answer.text);
        assert!(answer.header("location").is_none(), "{redirect}");
        assert!(answer.text.contains("redirect_uri"), "{}", answer.text);
    }
    env.shutdown().await;
}

/// The token exchange repeats the exact redirect_uri and the PKCE verifier whose lowercase
/// hex SHA-256 was the challenge; the code is single-use.
#[tokio::test]
async fn token_exchange_needs_the_same_redirect_and_the_verifier() {
    let env = Env::start(|_| {}).await;
    let query = authorize_ok(&env.api, "user.info.basic,video.upload", CALLBACK).await;
    let code = &query["code"];

    let other_port = exchange(&env.api, code, "http://127.0.0.1:54322/callback/", VERIFIER).await;
    assert_flat_error(&other_port, 200, "invalid_request");
    assert!(
        other_port.text.contains("Redirect_uri"),
        "{}",
        other_port.text
    );
    let other_host = exchange(&env.api, code, "http://localhost:54321/callback/", VERIFIER).await;
    assert_flat_error(&other_host, 200, "invalid_request");
    let no_verifier = exchange(&env.api, code, CALLBACK, "").await;
    assert_flat_error(&no_verifier, 200, "invalid_request");
    assert!(
        no_verifier.text.contains("Code verifier"),
        "{}",
        no_verifier.text
    );
    let wrong_verifier = exchange(&env.api, code, CALLBACK, &"x".repeat(43)).await;
    assert_flat_error(&wrong_verifier, 200, "invalid_request");

    let ok = exchange(&env.api, code, CALLBACK, VERIFIER).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let grant = ok.json();
    assert!(
        grant["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("act."))
    );
    assert!(
        grant["refresh_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("rft."))
    );
    assert_eq!(grant["scope"], "user.info.basic,video.upload");
    assert_eq!(grant["open_id"], "sandbox-open-id-0001");
    assert_eq!(grant["expires_in"], 7200);
    assert_eq!(grant["refresh_expires_in"], 15_552_000);
    assert_eq!(grant["token_type"], "Bearer");
    let me = env.api.user_info(&access(&grant), "open_id").await;
    me.assert_ok();
    assert_eq!(me.data()["user"]["open_id"], "sandbox-open-id-0001");

    let reused = exchange(&env.api, code, CALLBACK, VERIFIER).await;
    assert_flat_error(&reused, 200, "invalid_grant");
    env.shutdown().await;
}

/// Web platform: the portal refuses an http loopback redirect (at start and at runtime);
/// a registered https URI matches exactly and a one-character difference is refused.
#[tokio::test]
async fn web_platform_registers_https_only_and_matches_exactly() {
    let mut config = fast_config();
    config.platform = Platform::Web;
    let err = Sandbox::start(config.clone())
        .await
        .expect_err("a Web app cannot register http loopback URIs");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");

    let registered = "https://media.example.com/oauth/callback/";
    config.redirect_uris = vec![registered.into()];
    let sandbox = Sandbox::start(config).await.expect("https is registrable");
    let api = Api::new(sandbox.base_url());
    let query = authorize_ok(&api, "user.info.basic", registered).await;
    for near in [
        "https://media.example.com/oauth/callback",
        "https://media.example.com/oauth/callbacks/",
        "http://media.example.com/oauth/callback/",
        "https://media.example.co/oauth/callback/",
        "https://media.example.com:443/oauth/callback/x",
    ] {
        let answer = api
            .authorize(&authorize_query("user.info.basic", near, "s"))
            .await;
        assert_eq!(answer.status, 400, "{near} must not match: {}", answer.text);
    }
    let grant = exchange(&api, &query["code"], registered, VERIFIER).await;
    assert_eq!(grant.status, 200, "{}", grant.text);
    assert!(grant.json()["access_token"].is_string(), "{}", grant.text);

    let refused = api
        .control(&json!({"config": {"redirect_uris": ["http://127.0.0.1:*/callback/"]}}))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(sandbox.config().redirect_uris, vec![registered.to_string()]);
    sandbox.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 2–3. Approved scopes, granted scopes, per-endpoint scope checks (§3.1, §4, §7.1)
// ---------------------------------------------------------------------------------------------

/// Asking for a scope the app is not approved for redirects with `error=invalid_scope`.
#[tokio::test]
async fn unapproved_scope_is_invalid_scope() {
    let env = Env::start(|_| {}).await;
    env.control(json!({"config": {"approved_scopes": ["user.info.basic", "video.upload"]}}))
        .await;
    let answer = env
        .api
        .authorize(&authorize_query(
            "user.info.basic,video.publish",
            CALLBACK,
            "st",
        ))
        .await;
    assert_eq!(answer.status, 302, "{}", answer.text);
    let query = query_map(&answer.location());
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("invalid_scope")
    );
    assert_eq!(query.get("state").map(String::as_str), Some("st"));
    assert!(!query.contains_key("code"));
    authorize_ok(&env.api, "user.info.basic,video.upload", CALLBACK).await;
    let err = env
        .sandbox
        .login(None, &["video.publish".to_string()])
        .expect_err("not approved");
    assert!(err.to_string().contains("invalid_scope"), "{err}");
    env.shutdown().await;
}

/// The user untoggles scopes (never `user.info.basic`): the callback's `scopes` and the
/// token's `scope` list exactly what was granted, and every endpoint checks its own scope.
#[tokio::test]
async fn deselected_scopes_are_not_granted_and_endpoints_check_scopes() {
    let env = Env::start(|c| {
        c.accounts[0].deselect = vec![
            "video.publish".into(),
            "user.info.basic".into(),
            "user.info.profile".into(),
        ];
    })
    .await;
    let photo = env.media.add("p.jpg", pattern(3000, 1));
    let asked = "user.info.basic,user.info.profile,video.publish,video.upload";
    let query = authorize_ok(&env.api, asked, CALLBACK).await;
    assert_eq!(query["scopes"], "user.info.basic,video.upload");
    let grant = exchange(&env.api, &query["code"], CALLBACK, VERIFIER)
        .await
        .json();
    assert_eq!(grant["scope"], "user.info.basic,video.upload");
    let token = access(&grant);
    let api = &env.api;

    api.creator_info(&token)
        .await
        .assert_error(401, "scope_not_authorized");
    api.post(VIDEO_INIT, &token, &direct("SELF_ONLY", one_chunk(1000)))
        .await
        .assert_error(401, "scope_not_authorized");
    api.post(
        CONTENT_INIT,
        &token,
        &photos(
            "DIRECT_POST",
            Some("SELF_ONLY"),
            std::slice::from_ref(&photo),
        ),
    )
    .await
    .assert_error(401, "scope_not_authorized");
    let draft = publish_id(
        &api.init_ok(INBOX_INIT, &token, &inbox(one_chunk(1000)))
            .await,
    );
    api.init_ok(
        CONTENT_INIT,
        &token,
        &photos("MEDIA_UPLOAD", None, &[photo]),
    )
    .await;
    api.status(&token, &draft).await.assert_ok();
    // Past the scope check: an upload post is simply not cancellable.
    api.cancel(&token, &draft)
        .await
        .assert_error(400, "publish_not_cancellable");

    let basic = api
        .user_info(&token, "open_id,union_id,avatar_url,display_name")
        .await;
    basic.assert_ok();
    assert_eq!(basic.data()["user"]["display_name"], "tokdrop sandbox");
    assert!(basic.data()["user"].get("username").is_none());
    api.user_info(&token, "open_id,username")
        .await
        .assert_error(400, "scope_permission_missed");
    api.user_info(&token, "follower_count")
        .await
        .assert_error(400, "scope_permission_missed");
    env.shutdown().await;
}

/// `login(None, scopes)` (what `tokdrop run --sandbox` uses) grants like the authorize page;
/// a video.publish-only token cannot use the upload endpoints, a profile-only token cannot
/// read statuses, and each can do what its scopes allow.
#[tokio::test]
async fn login_shortcut_grants_like_the_page_and_scopes_gate_each_endpoint() {
    let env = Env::start(|c| c.accounts[0].deselect = vec!["video.upload".into()]).await;
    let all: Vec<String> = [
        "user.info.basic",
        "user.info.profile",
        "video.publish",
        "video.upload",
    ]
    .map(String::from)
    .to_vec();
    let grant = env.sandbox.login(None, &all).expect("login");
    assert_eq!(
        grant["scope"],
        "user.info.basic,user.info.profile,video.publish"
    );
    let page = authorize_ok(&env.api, &all.join(","), CALLBACK).await;
    assert_eq!(page["scopes"], grant["scope"].as_str().expect("scope"));

    let publish = access(&grant);
    let api = &env.api;
    let photo = env.media.add("p.jpg", pattern(2000, 2));
    api.creator_info(&publish).await.assert_ok();
    api.post(INBOX_INIT, &publish, &inbox(one_chunk(1000)))
        .await
        .assert_error(401, "scope_not_authorized");
    api.post(
        CONTENT_INIT,
        &publish,
        &photos("MEDIA_UPLOAD", None, &[photo]),
    )
    .await
    .assert_error(401, "scope_not_authorized");
    let id = publish_id(
        &api.init_ok(VIDEO_INIT, &publish, &direct("SELF_ONLY", one_chunk(1000)))
            .await,
    );
    api.status(&publish, &id).await.assert_ok();
    api.user_info(&publish, "username").await.assert_ok();

    let profile = env.token_for(
        "sandbox-open-id-0001",
        &["user.info.basic", "user.info.profile"],
    );
    api.status(&profile, &id)
        .await
        .assert_error(401, "scope_not_authorized");
    api.cancel(&profile, &id)
        .await
        .assert_error(401, "scope_not_authorized");
    api.creator_info(&profile)
        .await
        .assert_error(401, "scope_not_authorized");
    let me = api.user_info(&profile, "username,display_name").await;
    me.assert_ok();
    assert_eq!(me.data()["user"]["username"], "tokdrop.sandbox");
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 4. Audited or not (§8)
// ---------------------------------------------------------------------------------------------

/// Unaudited (default): only SELF_ONLY, only on private accounts; `audited: true` (set at
/// runtime) allows the creator's other options, public included.
#[tokio::test]
async fn unaudited_app_posts_only_self_only_to_private_accounts() {
    let env = Env::start(|c| c.accounts.push(account("public-creator", false))).await;
    let api = &env.api;
    let private = env.token();
    let public = env.token_for(
        "public-creator",
        &["user.info.basic", "video.publish", "video.upload"],
    );
    let unaudited = "unaudited_client_can_only_post_to_private_accounts";

    api.init_ok(VIDEO_INIT, &private, &direct("SELF_ONLY", one_chunk(1000)))
        .await;
    api.post(
        VIDEO_INIT,
        &private,
        &direct("FOLLOWER_OF_CREATOR", one_chunk(1000)),
    )
    .await
    .assert_error(403, unaudited);
    let photo = env.media.add("p.jpg", pattern(1000, 3));
    api.post(
        CONTENT_INIT,
        &private,
        &photos(
            "DIRECT_POST",
            Some("MUTUAL_FOLLOW_FRIENDS"),
            std::slice::from_ref(&photo),
        ),
    )
    .await
    .assert_error(403, unaudited);
    // creator_info may offer PUBLIC_TO_EVERYONE to an unaudited client all the same.
    let info = api.creator_info(&public).await;
    info.assert_ok();
    assert_eq!(
        info.data()["privacy_level_options"][0],
        "PUBLIC_TO_EVERYONE"
    );
    api.post(VIDEO_INIT, &public, &direct("SELF_ONLY", one_chunk(1000)))
        .await
        .assert_error(403, unaudited);
    api.post(
        VIDEO_INIT,
        &public,
        &direct("PUBLIC_TO_EVERYONE", one_chunk(1000)),
    )
    .await
    .assert_error(403, unaudited);
    // Drafts are not direct posts.
    api.init_ok(INBOX_INIT, &public, &inbox(one_chunk(1000)))
        .await;

    env.control(json!({"config": {"audited": true}})).await;
    api.init_ok(
        VIDEO_INIT,
        &public,
        &direct("PUBLIC_TO_EVERYONE", one_chunk(1000)),
    )
    .await;
    api.init_ok(
        VIDEO_INIT,
        &private,
        &direct("FOLLOWER_OF_CREATOR", one_chunk(1000)),
    )
    .await;
    api.init_ok(
        CONTENT_INIT,
        &private,
        &photos("DIRECT_POST", Some("MUTUAL_FOLLOW_FRIENDS"), &[photo]),
    )
    .await;
    api.post(
        VIDEO_INIT,
        &private,
        &direct("PUBLIC_TO_EVERYONE", one_chunk(1000)),
    )
    .await
    .assert_error(403, "privacy_level_option_mismatch");
    env.shutdown().await;
}

/// Unaudited: at most `unaudited_user_cap` distinct creators post per 24 h; the next one
/// gets `reached_active_user_cap` (403 on init, HTTP 200 on creator_info); creators already
/// counted keep posting.
#[tokio::test]
async fn unaudited_user_cap_counts_distinct_creators() {
    let env = Env::start(|c| {
        c.unaudited_user_cap = 2;
        c.accounts = vec![account("a", true), account("b", true), account("c", true)];
    })
    .await;
    let api = &env.api;
    let scopes = ["user.info.basic", "video.publish", "video.upload"];
    let [a, b, c] = ["a", "b", "c"].map(|id| env.token_for(id, &scopes));
    let body = direct("SELF_ONLY", one_chunk(1000));

    api.creator_info(&c).await.assert_ok();
    api.init_ok(VIDEO_INIT, &a, &body).await;
    api.init_ok(VIDEO_INIT, &b, &body).await;
    api.post(VIDEO_INIT, &c, &body)
        .await
        .assert_error(403, "reached_active_user_cap");
    api.creator_info(&c)
        .await
        .assert_error(200, "reached_active_user_cap");
    api.init_ok(VIDEO_INIT, &a, &body).await;
    api.creator_info(&a).await.assert_ok();
    api.init_ok(INBOX_INIT, &c, &inbox(one_chunk(1000))).await;
    assert_eq!(env.sandbox.calls().posts.len(), 4);
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Pulls: late, held, slow, timed out (§4.6, §10)
// ---------------------------------------------------------------------------------------------

/// `pull_delay_ms`: nothing reaches the media server until the delay has passed; meanwhile
/// the post is PROCESSING_DOWNLOAD with 0 bytes; then the record shows the whole download
/// and exactly one post for the file.
#[tokio::test]
async fn delayed_pull_starts_late_then_completes_once() {
    let delay = Duration::from_millis(500);
    let env = Env::start(|c| c.pull_delay_ms = delay.as_millis() as u64).await;
    let data = pattern(20_000, 4);
    let sha = sha256(&data);
    let url = env.media.add("late.mp4", data);
    let token = env.token();
    let started = Instant::now();
    let id = env.self_only_pull(&token, &url).await;
    let early = env.api.status(&token, &id).await;
    early.assert_ok();
    assert!(
        started.elapsed() < delay,
        "the machine is too slow for this test"
    );
    assert_eq!(early.data()["status"], "PROCESSING_DOWNLOAD");
    assert_eq!(early.data()["downloaded_bytes"], 0);
    assert!(env.media.hits().is_empty());

    let post = env.post_until(&id, |p| p.exists()).await;
    assert_eq!(post.status, "PUBLISH_COMPLETE");
    let hits = env.media.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(
        hits[0].1.duration_since(started) >= delay,
        "pulled too early"
    );
    let calls = env.sandbox.calls();
    let downloads = calls.downloads_of(&id);
    assert_eq!(downloads.len(), 1);
    assert_eq!(downloads[0].bytes, 20_000);
    assert_eq!(downloads[0].http_status, Some(200));
    assert_eq!(downloads[0].sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(calls.existing_posts_of(&sha).len(), 1);
    let done = env.api.status(&token, &id).await;
    assert_eq!(done.data()["status"], "PUBLISH_COMPLETE");
    assert_eq!(done.data()["downloaded_bytes"], 20_000);
    env.shutdown().await;
}

/// `hold_pulls` (switched over HTTP): no request while held, then the pull happens.
#[tokio::test]
async fn held_pulls_wait_until_released() {
    let env = Env::start(|_| {}).await;
    env.control(json!({"config": {"hold_pulls": true}})).await;
    let data = pattern(10_000, 5);
    let sha = sha256(&data);
    let url = env.media.add("held.mp4", data);
    let token = env.token();
    let id = publish_id(
        &env.api
            .init_ok(INBOX_INIT, &token, &inbox(pull_source(&url)))
            .await,
    );
    for _ in 0..4 {
        let status = env.api.status(&token, &id).await;
        assert_eq!(status.data()["status"], "PROCESSING_DOWNLOAD");
        assert_eq!(status.data()["downloaded_bytes"], 0);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(env.media.hits().is_empty());
    assert!(env.sandbox.calls().downloads_of(&id).is_empty());

    env.control(json!({"config": {"hold_pulls": false}})).await;
    let post = env.post_until(&id, |p| p.exists()).await;
    assert_eq!(post.status, "SEND_TO_USER_INBOX");
    assert_eq!(env.media.hits().len(), 1);
    assert_eq!(env.sandbox.calls().existing_posts_of(&sha).len(), 1);
    env.shutdown().await;
}

/// `pull_bytes_per_sec`: the pull keeps going while the client does other things, and
/// `downloaded_bytes` grows over several status/fetch calls.
#[tokio::test]
async fn slow_pull_grows_over_several_status_fetches() {
    let rate = 64_000u64;
    let env = Env::start(|c| c.pull_bytes_per_sec = Some(rate)).await;
    let size = 64_000usize;
    let url = env.media.add("slow.mp4", pattern(size, 6));
    let token = env.token();
    let id = env.self_only_pull(&token, &url).await;
    let mut seen = Vec::new();
    loop {
        // The client moves on to other calls meanwhile.
        env.api.creator_info(&token).await.assert_ok();
        let status = env.api.status(&token, &id).await.data();
        let bytes = status["downloaded_bytes"]
            .as_u64()
            .expect("downloaded_bytes");
        seen.push(bytes);
        if status["status"] != "PROCESSING_DOWNLOAD" {
            assert_eq!(status["status"], "PUBLISH_COMPLETE");
            break;
        }
        env.post_until(&id, |p| p.downloaded_bytes > bytes || p.is_terminal())
            .await;
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(size as u64));
    let partial: std::collections::BTreeSet<u64> = seen
        .iter()
        .copied()
        .filter(|&b| b > 0 && b < size as u64)
        .collect();
    assert!(partial.len() >= 3, "too few partial observations: {seen:?}");
    let calls = env.sandbox.calls();
    let download = calls.downloads_of(&id)[0];
    let took = download
        .finished_at
        .expect("finished")
        .duration_since(download.started_at);
    assert!(
        took >= jiff::SignedDuration::from_millis(800),
        "{size} bytes at {rate} B/s took {took}"
    );
    env.shutdown().await;
}

/// `pull_timeout_ms` counts from the init, queueing included: a pull still queued when it
/// expires fails `video_pull_failed` without a request to the media server.
#[tokio::test]
async fn queued_pull_times_out_from_the_init() {
    let env = Env::start(|c| {
        c.pull_delay_ms = 5_000;
        c.pull_timeout_ms = 300;
    })
    .await;
    let url = env.media.add("never.mp4", pattern(1000, 7));
    let token = env.token();
    let id = env.self_only_pull(&token, &url).await;
    let post = env.terminal(&id).await;
    assert_eq!(
        (post.status.as_str(), post.fail_reason.as_deref()),
        ("FAILED", Some("video_pull_failed"))
    );
    let failed_at = post.history.last().expect("history").1;
    assert!(failed_at.duration_since(post.created_at) >= jiff::SignedDuration::from_millis(300));
    assert!(env.media.hits().is_empty());
    assert!(env.sandbox.calls().downloads_of(&id).is_empty());
    let status = env.api.status(&token, &id).await.data();
    assert_eq!(status["status"], "FAILED");
    assert_eq!(status["fail_reason"], "video_pull_failed");
    env.shutdown().await;
}

/// A download that started but does not finish within `pull_timeout_ms` of the init fails
/// `video_pull_failed`, with the partial download recorded.
#[tokio::test]
async fn stalled_pull_times_out() {
    let env = Env::start(|c| c.pull_timeout_ms = 400).await;
    env.media.add("stall.mp4", pattern(10_000, 8));
    let url = env.media.url("part/50/stall.mp4");
    let token = env.token();
    let id = env.self_only_pull(&token, &url).await;
    let post = env.terminal(&id).await;
    assert_eq!(post.fail_reason.as_deref(), Some("video_pull_failed"));
    assert_eq!(post.downloaded_bytes, 5_000);
    let failed_at = post.history.last().expect("history").1;
    assert!(failed_at.duration_since(post.created_at) >= jiff::SignedDuration::from_millis(400));
    let calls = env.sandbox.calls();
    let download = calls.downloads_of(&id)[0];
    assert_eq!(
        (download.bytes, download.expected_bytes),
        (5_000, Some(10_000))
    );
    assert!(
        download.sha256.is_none() && download.error.is_some(),
        "{download:?}"
    );
    assert!(post.media_sha256.is_empty());
    env.media.release("stall.mp4");
    env.shutdown().await;
}

/// Photos pulled by content/init fail `photo_pull_failed` when one image times out.
#[tokio::test]
async fn photo_pull_timeout_is_photo_pull_failed() {
    let env = Env::start(|c| c.pull_timeout_ms = 300).await;
    let first = pattern(3000, 9);
    let first_sha = sha256(&first);
    let ok = env.media.add("one.jpg", first);
    env.media.add("two.jpg", pattern(3000, 10));
    let stalled = env.media.url("part/0/two.jpg");
    let token = env.token();
    let id = publish_id(
        &env.api
            .init_ok(
                CONTENT_INIT,
                &token,
                &photos("DIRECT_POST", Some("SELF_ONLY"), &[ok, stalled]),
            )
            .await,
    );
    assert!(id.starts_with("p_"), "{id}");
    let post = env.terminal(&id).await;
    assert_eq!(
        (post.status.as_str(), post.fail_reason.as_deref()),
        ("FAILED", Some("photo_pull_failed"))
    );
    assert_eq!(post.media_sha256, vec![first_sha.clone()]);
    let calls = env.sandbox.calls();
    assert_eq!(calls.downloads_of(&id).len(), 2);
    assert!(calls.existing_posts_of(&first_sha).is_empty());
    let status = env.api.status(&token, &id).await.data();
    assert_eq!(status["fail_reason"], "photo_pull_failed");
    env.media.release("two.jpg");
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 6. cancel: best effort, recorded (§4.8)
// ---------------------------------------------------------------------------------------------

/// While downloading: cancel is ok, the post ends FAILED `publish_cancelled`, the download
/// stops, and the cancel is recorded.
#[tokio::test]
async fn cancel_while_downloading_fails_the_post() {
    let env = Env::start(|_| {}).await;
    let data = pattern(8_000, 11);
    let sha = sha256(&data);
    env.media.add("c.mp4", data);
    let url = env.media.url("part/50/c.mp4");
    let token = env.token();
    let id = env.self_only_pull(&token, &url).await;
    env.post_until(&id, |p| p.downloaded_bytes == 4_000).await;
    let answer = env.api.cancel(&token, &id).await;
    answer.assert_ok();
    let status = env.api.status(&token, &id).await.data();
    assert_eq!(status["status"], "FAILED");
    assert_eq!(status["fail_reason"], "publish_cancelled");
    let download_error = env
        .until(|c| c.downloads_of(&id).first().and_then(|d| d.error.clone()))
        .await;
    assert!(download_error.contains("cancel"), "{download_error}");
    env.media.release("c.mp4");
    let calls = env.sandbox.calls();
    assert_eq!(calls.cancels.len(), 1);
    let record = &calls.cancels[0];
    assert_eq!(
        (
            record.code.as_str(),
            record.status_before.as_str(),
            record.downloaded_bytes
        ),
        ("ok", "PROCESSING_DOWNLOAD", 4_000)
    );
    assert!(calls.posts_of(&sha).is_empty());

    let again = env.api.cancel(&token, &id).await;
    again.assert_error(400, "publish_not_cancellable");
    assert_eq!(env.sandbox.calls().cancels.len(), 2);
    env.shutdown().await;
}

/// Near completion (`cancel_refused_after_percent`, 90 by default, lowered over HTTP) the
/// cancel is refused `publish_not_cancellable`, recorded, and the post completes.
#[tokio::test]
async fn cancel_near_completion_is_refused_and_recorded() {
    let env = Env::start(|_| {}).await;
    let token = env.token();
    let data = pattern(8_000, 12);
    let sha = sha256(&data);
    env.media.add("near.mp4", data.clone());
    let id = env
        .self_only_pull(&token, &env.media.url("part/95/near.mp4"))
        .await;
    env.post_until(&id, |p| p.downloaded_bytes == 7_600).await;
    env.api
        .cancel(&token, &id)
        .await
        .assert_error(400, "publish_not_cancellable");
    env.media.release("near.mp4");
    assert_eq!(
        env.post_until(&id, |p| p.exists()).await.status,
        "PUBLISH_COMPLETE"
    );
    assert_eq!(env.sandbox.calls().existing_posts_of(&sha).len(), 1);

    env.control(json!({"config": {"cancel_refused_after_percent": 40}}))
        .await;
    env.media.add("half.mp4", pattern(8_000, 13));
    let half = env
        .self_only_pull(&token, &env.media.url("part/50/half.mp4"))
        .await;
    env.post_until(&half, |p| p.downloaded_bytes == 4_000).await;
    env.api
        .cancel(&token, &half)
        .await
        .assert_error(400, "publish_not_cancellable");
    env.media.release("half.mp4");
    let cancels = env.sandbox.calls().cancels;
    let codes: Vec<(&str, &str, u64)> = cancels
        .iter()
        .map(|c| (c.publish_id.as_str(), c.code.as_str(), c.downloaded_bytes))
        .collect();
    assert_eq!(
        codes,
        [
            (id.as_str(), "publish_not_cancellable", 7_600),
            (half.as_str(), "publish_not_cancellable", 4_000)
        ]
    );
    env.shutdown().await;
}

/// After the pull finished (even of a body without Content-Length, still processing) or
/// after the post completed, and for uploads, cancel is refused and recorded.
#[tokio::test]
async fn cancel_after_the_pull_finished_is_refused() {
    let env = Env::start(|c| c.processing_delay_ms = 60_000).await;
    let token = env.token();
    env.media.add("done.mp4", pattern(9_000, 14));
    let processing = env
        .self_only_pull(&token, &env.media.url("chunked/done.mp4"))
        .await;
    env.until(|c| {
        c.downloads_of(&processing)
            .first()
            .and_then(|d| d.sha256.clone())
    })
    .await;
    assert_eq!(env.post(&processing).status, "PROCESSING_DOWNLOAD");
    env.api
        .cancel(&token, &processing)
        .await
        .assert_error(400, "publish_not_cancellable");

    env.control(json!({"config": {"processing_delay_ms": 0}}))
        .await;
    let url = env.media.add("fast.mp4", pattern(9_000, 15));
    let complete = env.self_only_pull(&token, &url).await;
    env.post_until(&complete, |p| p.exists()).await;
    env.api
        .cancel(&token, &complete)
        .await
        .assert_error(400, "publish_not_cancellable");
    let upload = publish_id(
        &env.api
            .init_ok(VIDEO_INIT, &token, &direct("SELF_ONLY", one_chunk(1000)))
            .await,
    );
    env.api
        .cancel(&token, &upload)
        .await
        .assert_error(400, "publish_not_cancellable");

    let calls = env.sandbox.calls();
    let before: Vec<(&str, &str)> = calls
        .cancels
        .iter()
        .map(|c| (c.status_before.as_str(), c.code.as_str()))
        .collect();
    assert_eq!(
        before,
        [
            ("PROCESSING_DOWNLOAD", "publish_not_cancellable"),
            ("PUBLISH_COMPLETE", "publish_not_cancellable"),
            ("PROCESSING_UPLOAD", "publish_not_cancellable"),
        ]
    );
    assert_eq!(env.post(&processing).status, "PROCESSING_DOWNLOAD");
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Lost answers and gateway errors (§2.1, §10)
// ---------------------------------------------------------------------------------------------

/// A dropped connection that took effect: the client hears nothing usable, yet the post
/// exists; the fault is used up.
#[tokio::test]
async fn dropped_init_answer_still_creates_the_post() {
    let env = Env::start(|_| {}).await;
    env.control(json!({"config": {"faults": [
        {"endpoint": "video_init", "drop_connection": true, "take_effect": true}
    ]}}))
    .await;
    let token = env.token();
    let body = direct("SELF_ONLY", one_chunk(1000));
    // Not even a status line arrives: the connection closes after the request was read.
    let heard = env.api.try_post(VIDEO_INIT, &token, &body).await;
    let err = heard.expect_err("the client got an answer");
    assert!(err.is_request() && err.status().is_none(), "{err:?}");
    let calls = env.sandbox.calls();
    let init_calls = calls.of(SandboxEndpoint::VideoInit);
    assert_eq!(init_calls.len(), 1);
    assert!(init_calls[0].dropped);
    assert_eq!(init_calls[0].http_status, 0);
    assert_eq!(calls.posts.len(), 1, "the post exists at TikTok");
    assert_eq!(
        calls.inits[0].publish_id.as_deref(),
        Some(calls.posts[0].publish_id.as_str())
    );

    env.api.init_ok(VIDEO_INIT, &token, &body).await;
    assert_eq!(env.sandbox.calls().posts.len(), 2);
    env.shutdown().await;
}

/// A 5xx that took effect: the client gets the 5xx envelope, the post exists anyway; a 5xx
/// that did not take effect creates nothing.
#[tokio::test]
async fn init_5xx_that_took_effect_still_creates_the_post() {
    let env = Env::start(|_| {}).await;
    let token = env.token();
    let body = inbox(one_chunk(1000));
    env.control(json!({"config": {"faults": [
        {"endpoint": "inbox_video_init", "http_status": 503, "code": "internal_error", "take_effect": true}
    ]}}))
    .await;
    let answer = env.api.post(INBOX_INIT, &token, &body).await;
    answer.assert_error(503, "internal_error");
    assert_eq!(answer.data(), json!({}));
    let calls = env.sandbox.calls();
    assert_eq!(calls.posts.len(), 1);
    assert_eq!(calls.posts[0].status, "PROCESSING_UPLOAD");

    env.sandbox.set(|c| {
        c.faults.push(Fault::error(
            SandboxEndpoint::InboxVideoInit,
            500,
            "internal_error",
            1,
        ));
    });
    env.api
        .post(INBOX_INIT, &token, &body)
        .await
        .assert_error(500, "internal_error");
    assert_eq!(env.sandbox.calls().posts.len(), 1);
    env.shutdown().await;
}

/// A fault without a code answers a gateway's HTML page, not JSON.
#[tokio::test]
async fn gateway_5xx_is_an_html_page() {
    let env = Env::start(|_| {}).await;
    let token = env.token();
    env.control(json!({"config": {"faults": [
        {"endpoint": "creator_info", "http_status": 502, "code": null},
        {"endpoint": "video_init", "http_status": 504}
    ]}}))
    .await;
    let info = env.api.creator_info(&token).await;
    assert_eq!(info.status, 502);
    assert!(
        info.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(info.text.contains("<html>"), "{}", info.text);
    assert!(serde_json::from_str::<Value>(&info.text).is_err());
    let init = env
        .api
        .post(VIDEO_INIT, &token, &direct("SELF_ONLY", one_chunk(1000)))
        .await;
    assert_eq!(init.status, 504);
    assert!(
        init.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(env.sandbox.calls().posts.is_empty());
    env.api.creator_info(&token).await.assert_ok();
    env.shutdown().await;
}

/// Raw fault bodies are answered verbatim, with their content type (JSON by default), and
/// no envelope knob touches them.
#[tokio::test]
async fn raw_fault_bodies_are_answered_verbatim() {
    let env = Env::start(|_| {}).await;
    let token = env.token();
    let odd = r#"{"error":{"code":"ok"},"data":{"creator_nickname":7}}"#;
    env.control(json!({"config": {
        "envelope": {"extra_fields": true, "log_id_field": "logid"},
        "faults": [
            {"endpoint": "user_info", "http_status": 503, "body": "upstream busy", "content_type": "text/plain"},
            {"endpoint": "creator_info", "http_status": 200, "body": odd}
        ]
    }}))
    .await;
    let user = env.api.user_info(&token, "open_id").await;
    assert_eq!(user.status, 503);
    assert_eq!(user.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(user.text, "upstream busy");
    let info = env.api.creator_info(&token).await;
    assert_eq!(info.status, 200);
    assert!(
        info.header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
    assert_eq!(info.text, odd);
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Nulls, envelope variants, status names, big post ids (§2.1, §2.3, §4.7, §12.24)
// ---------------------------------------------------------------------------------------------

/// `envelope.explicit_nulls`: status/fetch sends `fail_reason: null` and
/// `publicaly_available_post_id: null` when they have no value.
#[tokio::test]
async fn explicit_nulls_in_status_fetch() {
    let env = Env::start(|_| {}).await;
    let token = env.token();
    let id = publish_id(
        &env.api
            .init_ok(VIDEO_INIT, &token, &direct("SELF_ONLY", one_chunk(1000)))
            .await,
    );
    let plain = env.api.status(&token, &id).await.data();
    assert_eq!(plain["status"], "PROCESSING_UPLOAD");
    assert_eq!(plain["publicaly_available_post_id"], json!([]));
    assert_eq!(plain["uploaded_bytes"], 0);
    assert_ne!(plain["fail_reason"], Value::Null);

    env.control(json!({"config": {"envelope": {"explicit_nulls": true}}}))
        .await;
    let nulls = env.api.status(&token, &id).await.data();
    let map = nulls.as_object().expect("data object");
    assert_eq!(map.get("fail_reason"), Some(&Value::Null), "{nulls}");
    assert_eq!(
        map.get("publicaly_available_post_id"),
        Some(&Value::Null),
        "{nulls}"
    );
    assert_eq!(nulls["status"], "PROCESSING_UPLOAD");
    env.shutdown().await;
}

/// `envelope.log_id_field: logid` and `envelope.error_data` (`absent`, `null`, `empty`).
#[tokio::test]
async fn logid_field_and_error_data_variants() {
    let env = Env::start(|_| {}).await;
    let token = env.token();
    let unknown = "v_pub_file~v2.1";
    let default_error = env.api.status(&token, unknown).await;
    default_error.assert_error(400, "invalid_publish_id");
    assert_eq!(default_error.json()["data"], json!({}));
    assert!(default_error.json()["error"]["log_id"].is_string());

    env.control(json!({"config": {"envelope": {"log_id_field": "logid", "error_data": "absent"}}}))
        .await;
    let ok = env.api.creator_info(&token).await.json();
    assert!(
        ok["error"]["logid"].as_str().is_some_and(|s| !s.is_empty()),
        "{ok}"
    );
    assert!(ok["error"].get("log_id").is_none(), "{ok}");
    let absent = env.api.status(&token, unknown).await;
    absent.assert_error(400, "invalid_publish_id");
    assert!(absent.json().get("data").is_none(), "{}", absent.text);
    assert!(absent.json()["error"]["logid"].is_string());

    env.control(json!({"config": {"envelope": {"error_data": "null"}}}))
        .await;
    let null = env.api.status(&token, unknown).await.json();
    assert_eq!(null.get("data"), Some(&Value::Null), "{null}");
    assert!(
        null["error"]["logid"].is_string(),
        "the patch merged: {null}"
    );
    env.shutdown().await;
}

/// `envelope.extra_fields`: unknown fields at the top and inside `data`.
#[tokio::test]
async fn extra_fields_are_added_to_envelope_and_data() {
    let env = Env::start(|c| c.envelope.extra_fields = true).await;
    let token = env.token();
    let info = env.api.creator_info(&token).await;
    info.assert_ok();
    let body = info.json();
    assert!(body.get("sandbox_extra").is_some(), "{body}");
    assert!(body["data"].get("sandbox_extra").is_some(), "{body}");
    assert_eq!(body["data"]["creator_username"], "tokdrop.sandbox");
    let error = env.api.status(&token, "v_pub_url~v2.2").await.json();
    assert!(error.get("sandbox_extra").is_some(), "{error}");
    env.shutdown().await;
}

/// `status_names`: the reported status strings are renamed (here to undocumented ones seen
/// in the wild); the record keeps TikTok's.
#[tokio::test]
async fn status_names_rename_reported_statuses() {
    let env = Env::start(|_| {}).await;
    env.control(json!({"config": {"hold_pulls": true, "status_names": {
        "PROCESSING_DOWNLOAD": "PROCESSING", "PUBLISH_COMPLETE": "PUBLISH_SUCCESS"
    }}}))
    .await;
    let token = env.token();
    let url = env.media.add("named.mp4", pattern(2000, 16));
    let id = env.self_only_pull(&token, &url).await;
    assert_eq!(
        env.api.status(&token, &id).await.data()["status"],
        "PROCESSING"
    );
    assert_eq!(env.post(&id).status, "PROCESSING_DOWNLOAD");
    env.control(json!({"config": {"hold_pulls": false}})).await;
    env.post_until(&id, |p| p.exists()).await;
    assert_eq!(
        env.api.status(&token, &id).await.data()["status"],
        "PUBLISH_SUCCESS"
    );
    env.shutdown().await;
}

/// A public post of an audited app on a public account gets 19-digit post ids after
/// moderation, emitted as JSON numbers (not strings).
#[tokio::test]
async fn public_post_ids_are_19_digit_json_numbers() {
    let env = Env::start(|c| {
        c.audited = true;
        c.accounts[0].private_account = false;
    })
    .await;
    let token = env.token();
    let data = pattern(1000, 17);
    let init = env
        .api
        .init_ok(
            VIDEO_INIT,
            &token,
            &direct("PUBLIC_TO_EVERYONE", one_chunk(1000)),
        )
        .await;
    let id = publish_id(&init);
    let put = env.api.put_chunk(&upload_url(&init), 0, 1000, &data).await;
    assert_eq!(put.status, 201, "{}", put.text);
    let post = env.post_until(&id, |p| !p.post_ids.is_empty()).await;
    let status = env.api.status(&token, &id).await;
    let ids = status.data()["publicaly_available_post_id"].clone();
    let first = &ids[0];
    assert!(first.is_u64(), "not a JSON number: {}", status.text);
    assert_eq!(first.as_u64(), Some(post.post_ids[0]));
    assert_eq!(post.post_ids[0].to_string().len(), 19);
    assert!(
        status.text.contains(&format!("[{}]", post.post_ids[0])),
        "{}",
        status.text
    );
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 9. Publish ids that expire, and other users' ids (§4.7, §4.8)
// ---------------------------------------------------------------------------------------------

/// `publish_id_ttl_secs`: ids older than the TTL answer `invalid_publish_id` on status/fetch
/// and cancel.
#[tokio::test]
async fn publish_id_ttl_makes_ids_invalid() {
    let env = Env::start(|_| {}).await;
    let token = env.token();
    env.control(json!({"config": {"hold_pulls": true}})).await;
    let url = env.media.add("ttl.mp4", pattern(1000, 18));
    let id = env.self_only_pull(&token, &url).await;
    env.api.status(&token, &id).await.assert_ok();
    env.control(json!({"config": {"publish_id_ttl_secs": 0}}))
        .await;
    env.api
        .status(&token, &id)
        .await
        .assert_error(400, "invalid_publish_id");
    env.api
        .cancel(&token, &id)
        .await
        .assert_error(400, "invalid_publish_id");
    assert!(env.sandbox.calls().cancels.is_empty());
    env.control(json!({"config": {"publish_id_ttl_secs": 3600}}))
        .await;
    env.api.status(&token, &id).await.assert_ok();
    env.shutdown().await;
}

/// Control `expire_publish_ids`: every id issued so far becomes unknown; later ones work.
#[tokio::test]
async fn expire_publish_ids_action_makes_ids_invalid() {
    let env = Env::start(|_| {}).await;
    let token = env.token();
    let body = direct("SELF_ONLY", one_chunk(1000));
    let old = publish_id(&env.api.init_ok(VIDEO_INIT, &token, &body).await);
    env.control(json!({"expire_publish_ids": true})).await;
    env.api
        .status(&token, &old)
        .await
        .assert_error(400, "invalid_publish_id");
    env.api
        .cancel(&token, &old)
        .await
        .assert_error(400, "invalid_publish_id");
    let new = publish_id(&env.api.init_ok(VIDEO_INIT, &token, &body).await);
    env.api.status(&token, &new).await.assert_ok();
    env.shutdown().await;
}

/// Another user's token: `token_not_authorized_for_specified_publish_id` on status/fetch and
/// cancel, and the post is untouched.
#[tokio::test]
async fn another_users_token_is_not_authorized_for_the_publish_id() {
    let env = Env::start(|c| {
        c.accounts.push(account("other", true));
        c.hold_pulls = true;
    })
    .await;
    let mine = env.token();
    let theirs = env.token_for(
        "other",
        &["user.info.basic", "video.publish", "video.upload"],
    );
    let url = env.media.add("mine.mp4", pattern(1000, 19));
    let id = publish_id(
        &env.api
            .init_ok(VIDEO_INIT, &mine, &direct("SELF_ONLY", pull_source(&url)))
            .await,
    );
    let code = "token_not_authorized_for_specified_publish_id";
    env.api.status(&theirs, &id).await.assert_error(400, code);
    env.api.cancel(&theirs, &id).await.assert_error(400, code);
    assert_eq!(env.post(&id).status, "PROCESSING_DOWNLOAD");
    env.api.cancel(&mine, &id).await.assert_ok();
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 10. FILE_UPLOAD chunks (§4.5)
// ---------------------------------------------------------------------------------------------

/// 20,000 bytes in 3 chunks of 6,000 (the last takes the remainder): valid under
/// `chunk_rule_scale: 1000` (20 MB in 6 MB chunks), invalid at TikTok's real scale.
const FILE: usize = 20_000;
const CHUNK: usize = 6_000;

/// In order: 206, 206, 201, each with the `Content-Range: bytes 0-N/T` progress header; the
/// post completes with the file's SHA-256. The same plan at scale 1 is `invalid_param`.
#[tokio::test]
async fn chunked_upload_answers_206_then_201_with_progress() {
    let env = Env::start(|c| c.chunk_rule_scale = 1000).await;
    let token = env.token();
    let data = pattern(FILE, 20);
    let sha = sha256(&data);
    let plan = upload_source(FILE as u64, CHUNK as u64, 3);
    let init = env
        .api
        .init_ok(VIDEO_INIT, &token, &direct("SELF_ONLY", plan.clone()))
        .await;
    let id = publish_id(&init);
    let url = upload_url(&init);
    assert!(url.len() <= 256, "{url}");
    let answers = upload_all(&env.api, &url, &data, CHUNK, 3).await;
    let seen: Vec<(u16, Option<String>)> = answers
        .iter()
        .map(|a| (a.status, a.header("content-range")))
        .collect();
    assert_eq!(
        seen,
        [
            (206, Some("bytes 0-5999/20000".into())),
            (206, Some("bytes 0-11999/20000".into())),
            (201, Some("bytes 0-19999/20000".into())),
        ]
    );
    let post = env.terminal(&id).await;
    assert_eq!(post.status, "PUBLISH_COMPLETE");
    assert_eq!(post.upload_sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(env.sandbox.calls().existing_posts_of(&sha).len(), 1);
    let status = env.api.status(&token, &id).await.data();
    assert_eq!(status["uploaded_bytes"], FILE);

    env.control(json!({"config": {"chunk_rule_scale": 1}}))
        .await;
    let refused = env
        .api
        .post(VIDEO_INIT, &token, &direct("SELF_ONLY", plan))
        .await;
    refused.assert_error(400, "invalid_param");
    assert!(refused.text.contains("chunk"), "{}", refused.text);
    env.shutdown().await;
}

/// A chunk out of order is 416 with the progress header saying where the upload stands.
#[tokio::test]
async fn out_of_order_chunk_is_416_with_progress() {
    let env = Env::start(|c| c.chunk_rule_scale = 1000).await;
    let token = env.token();
    let data = pattern(FILE, 21);
    let init = env
        .api
        .init_ok(
            INBOX_INIT,
            &token,
            &inbox(upload_source(FILE as u64, CHUNK as u64, 3)),
        )
        .await;
    let url = upload_url(&init);
    let total = FILE as u64;
    let early = env
        .api
        .put_chunk(&url, 6_000, total, &data[6_000..12_000])
        .await;
    assert_eq!(early.status, 416);
    assert_eq!(
        early.header("content-range").as_deref(),
        Some("bytes */20000")
    );
    let first = env.api.put_chunk(&url, 0, total, &data[..6_000]).await;
    assert_eq!(first.status, 206);
    let skip = env
        .api
        .put_chunk(&url, 12_000, total, &data[12_000..])
        .await;
    assert_eq!(skip.status, 416);
    assert_eq!(
        skip.header("content-range").as_deref(),
        Some("bytes 0-5999/20000")
    );
    let odd = env
        .api
        .put_chunk(&url, 6_000, total, &data[6_000..11_000])
        .await;
    assert_eq!(odd.status, 416, "a chunk of the wrong size");
    let status = env.api.status(&token, &publish_id(&init)).await.data();
    assert_eq!(status["uploaded_bytes"], 6_000);
    env.shutdown().await;
}

/// A chunk whose 5xx was injected after it was stored: resending it is 416 with the header
/// saying where to resume, the next chunk succeeds and the file is whole.
#[tokio::test]
async fn chunk_whose_5xx_took_effect_was_stored() {
    let env = Env::start(|c| c.chunk_rule_scale = 1000).await;
    let token = env.token();
    let data = pattern(FILE, 22);
    let sha = sha256(&data);
    let init = env
        .api
        .init_ok(
            INBOX_INIT,
            &token,
            &inbox(upload_source(FILE as u64, CHUNK as u64, 3)),
        )
        .await;
    let (id, url, total) = (publish_id(&init), upload_url(&init), FILE as u64);
    env.api.put_chunk(&url, 0, total, &data[..6_000]).await;
    env.control(json!({"config": {"faults": [
        {"endpoint": "upload", "http_status": 502, "code": "bad_gateway", "take_effect": true}
    ]}}))
    .await;
    let lost = env
        .api
        .put_chunk(&url, 6_000, total, &data[6_000..12_000])
        .await;
    assert_eq!(lost.status, 502);
    let again = env
        .api
        .put_chunk(&url, 6_000, total, &data[6_000..12_000])
        .await;
    assert_eq!(again.status, 416);
    assert_eq!(
        again.header("content-range").as_deref(),
        Some("bytes 0-11999/20000")
    );
    let last = env
        .api
        .put_chunk(&url, 12_000, total, &data[12_000..])
        .await;
    assert_eq!(last.status, 201);
    assert_eq!(
        last.header("content-range").as_deref(),
        Some("bytes 0-19999/20000")
    );
    let post = env.terminal(&id).await;
    assert_eq!(post.status, "SEND_TO_USER_INBOX");
    assert_eq!(post.upload_sha256.as_deref(), Some(sha.as_str()));
    env.shutdown().await;
}

/// An expired upload_url (`upload_url_secs: 0`) answers 403.
#[tokio::test]
async fn expired_upload_url_is_403() {
    let env = Env::start(|_| {}).await;
    env.control(json!({"config": {"upload_url_secs": 0}})).await;
    let token = env.token();
    let init = env
        .api
        .init_ok(VIDEO_INIT, &token, &direct("SELF_ONLY", one_chunk(1000)))
        .await;
    let put = env
        .api
        .put_chunk(&upload_url(&init), 0, 1000, &pattern(1000, 23))
        .await;
    assert_eq!(put.status, 403, "{}", put.text);
    let post = env.post(&publish_id(&init));
    assert_eq!(
        (post.status.as_str(), post.uploaded_bytes),
        ("PROCESSING_UPLOAD", 0)
    );
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 11. Rate windows and caps (§8)
// ---------------------------------------------------------------------------------------------

/// 6 inits per minute per token per endpoint: the 7th video/init is 429
/// `rate_limit_exceeded`, inbox/video/init on the same token and video/init on another token
/// are still admitted; a shorter window (set over HTTP) frees the slot when it has passed.
#[tokio::test]
async fn init_rate_limit_is_per_token_and_per_endpoint() {
    let env = Env::start(|_| {}).await;
    let token = env.token();
    let body = direct("SELF_ONLY", one_chunk(1000));
    for _ in 0..6 {
        env.api.init_ok(VIDEO_INIT, &token, &body).await;
    }
    env.api
        .post(VIDEO_INIT, &token, &body)
        .await
        .assert_error(429, "rate_limit_exceeded");
    env.api
        .init_ok(INBOX_INIT, &token, &inbox(one_chunk(1000)))
        .await;
    env.api.init_ok(VIDEO_INIT, &env.token(), &body).await;

    let window = Duration::from_millis(300);
    env.control(json!({"config": {"rate_limits": {"init": 2, "window_ms": 300}}}))
        .await;
    let fresh = env.token();
    let first = Instant::now();
    env.api.init_ok(VIDEO_INIT, &fresh, &body).await;
    env.api.init_ok(VIDEO_INIT, &fresh, &body).await;
    env.api
        .post(VIDEO_INIT, &fresh, &body)
        .await
        .assert_error(429, "rate_limit_exceeded");
    let admitted = loop {
        let answer = env.api.post(VIDEO_INIT, &fresh, &body).await;
        if answer.status == 200 {
            break Instant::now();
        }
        answer.assert_error(429, "rate_limit_exceeded");
        assert!(first.elapsed() < WAIT, "the window never ended");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(admitted.duration_since(first) >= window);
    env.shutdown().await;
}

/// `daily_post_cap`: inits beyond it are 403 `spam_risk_too_many_posts` and creator_info
/// says so with HTTP 200; drafts are not direct posts; `reset_counters` starts a new day.
#[tokio::test]
async fn daily_post_cap_refuses_inits_and_creator_info_says_so() {
    let env = Env::start(|c| c.daily_post_cap = 2).await;
    let token = env.token();
    let body = direct("SELF_ONLY", one_chunk(1000));
    env.api.init_ok(VIDEO_INIT, &token, &body).await;
    env.api.init_ok(VIDEO_INIT, &token, &body).await;
    env.api
        .post(VIDEO_INIT, &token, &body)
        .await
        .assert_error(403, "spam_risk_too_many_posts");
    let photo = env.media.add("cap.jpg", pattern(1000, 24));
    env.api
        .post(
            CONTENT_INIT,
            &token,
            &photos("DIRECT_POST", Some("SELF_ONLY"), &[photo]),
        )
        .await
        .assert_error(403, "spam_risk_too_many_posts");
    let info = env.api.creator_info(&token).await;
    info.assert_error(200, "spam_risk_too_many_posts");
    env.api
        .init_ok(INBOX_INIT, &token, &inbox(one_chunk(1000)))
        .await;

    env.control(json!({"reset_counters": true})).await;
    env.api.creator_info(&token).await.assert_ok();
    env.api.init_ok(VIDEO_INIT, &token, &body).await;
    env.shutdown().await;
}

/// `pending_share_cap` (set over HTTP): drafts beyond it are 403
/// `spam_risk_too_many_pending_share` on both draft endpoints; direct posts go on.
#[tokio::test]
async fn pending_share_cap_refuses_more_drafts() {
    let env = Env::start(|_| {}).await;
    env.control(json!({"config": {"pending_share_cap": 2}}))
        .await;
    let token = env.token();
    let draft = inbox(one_chunk(1000));
    env.api.init_ok(INBOX_INIT, &token, &draft).await;
    env.api.init_ok(INBOX_INIT, &token, &draft).await;
    env.api
        .post(INBOX_INIT, &token, &draft)
        .await
        .assert_error(403, "spam_risk_too_many_pending_share");
    let photo = env.media.add("pending.jpg", pattern(1000, 25));
    env.api
        .post(
            CONTENT_INIT,
            &token,
            &photos("MEDIA_UPLOAD", None, &[photo]),
        )
        .await
        .assert_error(403, "spam_risk_too_many_pending_share");
    env.api
        .init_ok(VIDEO_INIT, &token, &direct("SELF_ONLY", one_chunk(1000)))
        .await;
    assert_eq!(env.sandbox.calls().posts.len(), 3);
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 12–13. Revoke and refresh (§3.5, §3.6)
// ---------------------------------------------------------------------------------------------

/// Revoke with the access token: recorded; the user's tokens stop working (access 401
/// `access_token_invalid`, refresh `invalid_grant`); posts still processing end FAILED
/// `auth_removed` and their pull never starts.
#[tokio::test]
async fn revoke_ends_the_grant_and_fails_unfinished_posts() {
    let env = Env::start(|c| c.hold_pulls = true).await;
    let grant = env.grant();
    let other_login = env.grant();
    let token = access(&grant);
    let url = env.media.add("revoked.mp4", pattern(1000, 26));
    let pull = env.self_only_pull(&token, &url).await;
    let upload = publish_id(
        &env.api
            .init_ok(INBOX_INIT, &token, &inbox(one_chunk(1000)))
            .await,
    );

    let answer = revoke(&env.api, &token).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.text.is_empty() || answer.json() == json!({}),
        "{}",
        answer.text
    );
    let calls = env.sandbox.calls();
    assert_eq!(calls.revokes.len(), 1);
    assert!(calls.revokes[0].revoked);
    assert_eq!(
        calls.revokes[0].open_id.as_deref(),
        Some("sandbox-open-id-0001")
    );

    env.api
        .creator_info(&token)
        .await
        .assert_error(401, "access_token_invalid");
    let rt = grant["refresh_token"].as_str().expect("refresh token");
    assert_flat_error(&refresh(&env.api, rt).await, 200, "invalid_grant");
    // The app left the user's connected apps: every login of that user ended.
    env.api
        .creator_info(&access(&other_login))
        .await
        .assert_error(401, "access_token_invalid");
    for id in [&pull, &upload] {
        let post = env.terminal(id).await;
        assert_eq!(post.fail_reason.as_deref(), Some("auth_removed"), "{id}");
    }
    env.control(json!({"config": {"hold_pulls": false}})).await;
    // A fresh login works again and sees the failure; the held pull never ran.
    let fresh = env.token();
    let status = env.api.status(&fresh, &pull).await.data();
    assert_eq!(status["fail_reason"], "auth_removed");
    assert!(env.sandbox.calls().downloads_of(&pull).is_empty());
    env.shutdown().await;
}

/// An expired access token (Control `expire_access_tokens`) cannot revoke: flat OAuth error,
/// recorded `revoked: false`; the grant's refresh token still works.
#[tokio::test]
async fn expired_access_token_cannot_revoke() {
    let env = Env::start(|_| {}).await;
    let grant = env.grant();
    let token = access(&grant);
    env.control(json!({"expire_access_tokens": true})).await;
    env.api
        .creator_info(&token)
        .await
        .assert_error(401, "access_token_invalid");
    let answer = revoke(&env.api, &token).await;
    let body = answer.json();
    assert!(body["error"].is_string(), "{body}");
    assert!(
        body["error_description"].is_string() && body.get("data").is_none(),
        "{body}"
    );
    let calls = env.sandbox.calls();
    assert_eq!(calls.revokes.len(), 1);
    assert!(!calls.revokes[0].revoked);
    assert_eq!(calls.revokes[0].open_id, None);

    let renewed = refresh(&env.api, grant["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    env.api
        .creator_info(&access(&renewed.json()))
        .await
        .assert_ok();
    env.shutdown().await;
}

/// Refresh rotates: a new refresh token each time, the old one is `invalid_grant` (a flat
/// error on HTTP 200 by default, 400 with `oauth_error_status`).
#[tokio::test]
async fn refresh_rotates_and_the_old_token_is_invalid_grant() {
    let env = Env::start(|_| {}).await;
    let query = authorize_ok(&env.api, "user.info.basic,video.publish", CALLBACK).await;
    let first = exchange(&env.api, &query["code"], CALLBACK, VERIFIER)
        .await
        .json();
    let old = first["refresh_token"].as_str().expect("rt").to_string();

    let second = refresh(&env.api, &old).await;
    assert_eq!(second.status, 200, "{}", second.text);
    let second = second.json();
    let new = second["refresh_token"].as_str().expect("rt").to_string();
    assert_ne!(new, old);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["scope"], "user.info.basic,video.publish");
    assert_eq!(second["open_id"], first["open_id"]);
    assert_eq!(second["expires_in"], 7200);
    env.api.creator_info(&access(&second)).await.assert_ok();

    assert_flat_error(&refresh(&env.api, &old).await, 200, "invalid_grant");
    let third = refresh(&env.api, &new).await;
    assert_eq!(third.status, 200, "{}", third.text);
    assert!(third.json()["refresh_token"].is_string());
    env.control(json!({"config": {"oauth_error_status": 400}}))
        .await;
    assert_flat_error(&refresh(&env.api, &new).await, 400, "invalid_grant");
    let grants: Vec<Option<String>> = env
        .sandbox
        .calls()
        .of(SandboxEndpoint::Token)
        .iter()
        .map(|c| c.detail.clone())
        .collect();
    assert_eq!(
        grants.first(),
        Some(&Some("authorization_code".to_string()))
    );
    assert!(
        grants[1..]
            .iter()
            .all(|g| g.as_deref() == Some("refresh_token"))
    );
    env.shutdown().await;
}

/// Knob `check_media` (on by default): processing reads the uploaded video as TikTok does. A
/// real H.264 file is published; the same file claiming another codec (`av01` in its sample
/// description) fails with `file_format_check_failed`.
#[tokio::test]
async fn processing_checks_the_media_as_tiktok_does() {
    let env = Env::start(|c| c.check_media = true).await;
    let token = env.token();
    let sample = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/media/h264_faststart.mp4"),
    )
    .expect("sample");
    // The first sample entry's format: 12 bytes into the body of `stsd`.
    let at = sample
        .windows(4)
        .position(|w| w == b"stsd")
        .expect("an stsd box")
        + 4
        + 12;
    assert_eq!(&sample[at..at + 4], b"avc1");
    let mut av1 = sample.clone();
    av1[at..at + 4].copy_from_slice(b"av01");
    for (data, status, reason) in [
        (&sample, "PUBLISH_COMPLETE", None),
        (&av1, "FAILED", Some("file_format_check_failed")),
    ] {
        let len = data.len() as u64;
        let init = env
            .api
            .init_ok(
                VIDEO_INIT,
                &token,
                &direct("SELF_ONLY", upload_source(len, len, 1)),
            )
            .await;
        let id = publish_id(&init);
        upload_all(&env.api, &upload_url(&init), data, data.len(), 1).await;
        let post = env.terminal(&id).await;
        assert_eq!(post.status, status);
        assert_eq!(post.fail_reason.as_deref(), reason);
    }
    env.shutdown().await;
}
