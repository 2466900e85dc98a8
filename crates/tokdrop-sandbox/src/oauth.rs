//! Login Kit as TikTok runs it (tiktok-api.md §3): the authorize page (auto-approved by the
//! sandbox user, answering with a 302 to the redirect URI), the token endpoint for both
//! grants (exact redirect_uri, hex PKCE, single-use codes, refresh-token rotation), revoke,
//! and `/v2/user/info/` with its per-field scope rules.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::{AccountConfig, BASIC_SCOPE, SandboxConfig, SandboxEndpoint, redirect_matches};
use super::paths::split_list;
use super::pkce;
use super::records::RevokeRecord;
use super::reply::{self, Reply, bearer};
use super::state::{CodeGrant, Shared, TokenGrant, fingerprint, random_token};

type Params = HashMap<String, String>;

pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Params>,
) -> Response {
    reply::run(&shared, SandboxEndpoint::Authorize, None, async {
        authorize_reply(&shared, &params)
    })
    .await
}

/// Whether `uri` matches one of the app's registered redirect URIs (tiktok-api.md §3.2).
pub(super) fn redirect_allowed(config: &SandboxConfig, uri: &str) -> bool {
    config
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(config.platform, r, uri))
}

/// What the user grants at the authorize page: what the app asked for, less what the user
/// untoggled (never `user.info.basic`).
pub(super) fn granted(account: &AccountConfig, requested: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|s| s.as_str() == BASIC_SCOPE || !account.deselect.contains(s))
        .cloned()
        .collect()
}

fn authorize_reply(shared: &Shared, params: &Params) -> Reply {
    let config = shared.config().clone();
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    if get("client_key") != config.client_key {
        return Reply::text(
            400,
            "invalid_client",
            "Something went wrong: client_key. Client info is illegal or malformed.",
        );
    }
    let redirect_uri = get("redirect_uri");
    if !redirect_allowed(&config, redirect_uri) {
        return Reply::text(
            400,
            "invalid_request",
            "Something went wrong: please correct the following: redirect_uri",
        );
    }
    let state = get("state");
    let fail = |error: &str, description: &str| {
        let mut url = url::Url::parse(redirect_uri).expect("checked by redirect_allowed");
        url.query_pairs_mut()
            .append_pair("error", error)
            .append_pair("error_description", description)
            .append_pair("state", state);
        Reply::redirect(url.to_string(), error)
    };
    if state.is_empty() {
        return fail("invalid_request", "Please correct the following: state");
    }
    if get("response_type") != "code" {
        return fail(
            "unsupported_response_type",
            "response_type must be \"code\"",
        );
    }
    let requested: Vec<String> = split_list(get("scope"));
    if requested.is_empty()
        || requested
            .iter()
            .any(|s| !config.approved_scopes.contains(s))
    {
        return fail(
            "invalid_scope",
            "The scope is invalid or not approved for this app.",
        );
    }
    let challenge = get("code_challenge");
    let hex_ok = challenge.len() == 64 && challenge.bytes().all(|b| b.is_ascii_hexdigit());
    let b64_ok = config.accept_base64url_challenge && challenge.len() == 43;
    let pkce_ok = (hex_ok || b64_ok) && get("code_challenge_method") == "S256";
    let no_pkce = challenge.is_empty() && !config.require_pkce;
    if !(pkce_ok || no_pkce) {
        return fail(
            "invalid_request",
            "Please correct the following: code_challenge",
        );
    }
    if config.deny_authorization {
        return fail("access_denied", "The user denied the authorization.");
    }
    let Some(account) = config.authorizing_account() else {
        return fail("access_denied", "non_sandbox_target");
    };
    let granted = granted(account, &requested);
    // TikTok's codes hold characters that must be URL-decoded (tiktok-api.md §3.3).
    let code = random_token("sbx*", 40) + "!4";
    shared.state().codes.insert(
        code.clone(),
        CodeGrant {
            open_id: account.open_id.clone(),
            redirect_uri: redirect_uri.to_string(),
            challenge: challenge.to_string(),
            scopes: granted.clone(),
            expires: Instant::now() + Duration::from_secs(config.code_secs),
        },
    );
    let mut url = url::Url::parse(redirect_uri).expect("checked by redirect_allowed");
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("scopes", &granted.join(","))
        .append_pair("state", state);
    Reply::redirect(url.to_string(), "ok")
}

pub(super) async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<Params>) -> Response {
    let presented = form
        .get("code")
        .or_else(|| form.get("refresh_token"))
        .cloned();
    reply::run(
        &shared,
        SandboxEndpoint::Token,
        presented.as_deref(),
        async {
            let mut reply = token_reply(&shared, &form);
            reply.detail = form.get("grant_type").cloned();
            reply
        },
    )
    .await
}

fn token_reply(shared: &Shared, form: &Params) -> Reply {
    let config = shared.config().clone();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let status = config.oauth_error_status;
    if get("client_key") != config.client_key || get("client_secret") != config.client_secret {
        return Reply::oauth_error(status, "invalid_client", "Client key or secret is invalid.");
    }
    match get("grant_type") {
        "authorization_code" => exchange(shared, &config, form),
        "refresh_token" => refresh(shared, &config, get("refresh_token")),
        _ => Reply::oauth_error(
            status,
            "unsupported_grant_type",
            "The grant type is not supported.",
        ),
    }
}

fn exchange(shared: &Shared, config: &SandboxConfig, form: &Params) -> Reply {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let status = config.oauth_error_status;
    let mut state = shared.state();
    let Some(code) = state.codes.get(get("code")).cloned() else {
        return Reply::oauth_error(status, "invalid_grant", "Authorization code is expired.");
    };
    if code.expires <= Instant::now() {
        state.codes.remove(get("code"));
        return Reply::oauth_error(status, "invalid_grant", "Authorization code is expired.");
    }
    if code.redirect_uri != get("redirect_uri") {
        return Reply::oauth_error(
            status,
            "invalid_request",
            "Redirect_uri is not matched with the uri when requesting code.",
        );
    }
    let verifier = get("code_verifier");
    if code.challenge.is_empty() {
        // No challenge at authorize time (allowed only with `require_pkce: false`).
        state.codes.remove(get("code"));
        state.seq += 1;
        let grant_id = state.seq;
        drop(state);
        return Reply::oauth_ok(issue(shared, config, &code.open_id, &code.scopes, grant_id));
    }
    let matches = pkce::hex_challenge(verifier) == code.challenge.to_ascii_lowercase()
        || (config.accept_base64url_challenge
            && pkce::base64url_challenge(verifier) == code.challenge);
    if !pkce::valid_verifier(verifier) || !matches {
        return Reply::oauth_error(
            status,
            "invalid_request",
            "Code verifier or code challenge is invalid.",
        );
    }
    state.codes.remove(get("code"));
    state.seq += 1;
    let grant_id = state.seq;
    drop(state);
    Reply::oauth_ok(issue(shared, config, &code.open_id, &code.scopes, grant_id))
}

fn refresh(shared: &Shared, config: &SandboxConfig, presented: &str) -> Reply {
    let status = config.oauth_error_status;
    let grant = {
        let state = shared.state();
        state.refresh.get(presented).cloned()
    };
    let Some(grant) = grant.filter(|g| g.expires > Instant::now()) else {
        return Reply::oauth_error(
            status,
            "invalid_grant",
            "Refresh token is invalid or expired.",
        );
    };
    if config.rotate_refresh_tokens {
        shared.state().refresh.remove(presented);
        Reply::oauth_ok(issue(
            shared,
            config,
            &grant.open_id,
            &grant.scopes,
            grant.grant_id,
        ))
    } else {
        let mut body = issue(
            shared,
            config,
            &grant.open_id,
            &grant.scopes,
            grant.grant_id,
        );
        body["refresh_token"] = Value::String(presented.to_string());
        Reply::oauth_ok(body)
    }
}

/// Issues an access and a refresh token and returns the flat token answer (tiktok-api.md §3.4).
pub(super) fn issue(
    shared: &Shared,
    config: &SandboxConfig,
    open_id: &str,
    scopes: &[String],
    grant_id: u64,
) -> Value {
    let access = random_token("act.", 48);
    let refresh = random_token("rft.", 48);
    let now = Instant::now();
    let grant = |secs: u64| TokenGrant {
        open_id: open_id.to_string(),
        scopes: scopes.to_vec(),
        expires: now + Duration::from_secs(secs),
        grant_id,
    };
    let mut state = shared.state();
    state
        .access
        .insert(access.clone(), grant(config.access_token_secs));
    state
        .refresh
        .insert(refresh.clone(), grant(config.refresh_token_secs));
    drop(state);
    tracing::debug!(open_id, access = %fingerprint(&access), "sandbox issued tokens");
    json!({
        "access_token": access,
        "expires_in": config.access_token_secs,
        "open_id": open_id,
        "refresh_expires_in": config.refresh_token_secs,
        "refresh_token": refresh,
        "scope": scopes.join(","),
        "token_type": "Bearer",
    })
}

pub(super) async fn revoke(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<Params>,
) -> Response {
    let token = form.get("token").cloned();
    reply::run(&shared, SandboxEndpoint::Revoke, token.as_deref(), async {
        let config = shared.config().clone();
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        if get("client_key") != config.client_key || get("client_secret") != config.client_secret {
            return Reply::oauth_error(
                config.oauth_error_status,
                "invalid_client",
                "Client key or secret is invalid.",
            );
        }
        let presented = get("token");
        let mut state = shared.state();
        let grant = state
            .access
            .get(presented)
            .filter(|g| g.expires > Instant::now())
            .cloned();
        let seq = state.next_seq();
        state.records.revokes.push(RevokeRecord {
            seq,
            at: jiff::Timestamp::now(),
            token_fingerprint: fingerprint(presented),
            open_id: grant.as_ref().map(|g| g.open_id.clone()),
            revoked: grant.is_some(),
        });
        let Some(grant) = grant else {
            // An expired or unknown access token cannot revoke anything: the grant stays.
            return Reply::oauth_error(
                config.oauth_error_status,
                "invalid_request",
                "The access token is invalid or expired.",
            );
        };
        // Revoking removes the app from the user's connected apps (tiktok-api.md §3.6): every
        // login of this user ends, not only the one whose token was presented.
        state.access.retain(|_, g| g.open_id != grant.open_id);
        state.refresh.retain(|_, g| g.open_id != grant.open_id);
        let unfinished: Vec<String> = state
            .posts
            .iter()
            .filter(|p| p.record.open_id == grant.open_id && !p.record.is_terminal())
            .map(|p| p.record.publish_id.clone())
            .collect();
        drop(state);
        // The user's access is gone: what was still processing fails (tiktok-api.md §7.2).
        for publish_id in unfinished {
            shared.set_status(&publish_id, "FAILED", Some("auth_removed"));
        }
        Reply::oauth_ok(json!({}))
    })
    .await
}

/// Scope each `/v2/user/info/` field needs (tiktok-api.md §3.1).
fn field_scope(field: &str) -> Option<&'static str> {
    Some(match field {
        "open_id" | "union_id" | "avatar_url" | "avatar_url_100" | "avatar_large_url"
        | "display_name" => "user.info.basic",
        "bio_description" | "profile_deep_link" | "is_verified" | "username" => "user.info.profile",
        "follower_count" | "following_count" | "likes_count" | "video_count" => "user.info.stats",
        _ => return None,
    })
}

pub(super) async fn user_info(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let token = bearer(&headers);
    reply::run(
        &shared,
        SandboxEndpoint::UserInfo,
        token.as_deref(),
        async {
            let caller = match shared.authorize_call(token.as_deref(), SandboxEndpoint::UserInfo) {
                Ok(caller) => caller,
                Err(reply) => return reply,
            };
            let fields = split_list(params.get("fields").map(String::as_str).unwrap_or(""));
            let missing = fields
                .iter()
                .filter_map(|f| field_scope(f))
                .find(|scope| !caller.has(scope));
            if let Some(scope) = missing {
                return Reply::api_error(
                    shared.status_for("scope_permission_missed", 400),
                    "scope_permission_missed",
                    &format!("A requested field needs the scope {scope}, which was not granted."),
                );
            }
            let config = shared.config().clone();
            let Some(account) = config.account(&caller.open_id) else {
                return Reply::api_error(401, "access_token_invalid", "The user no longer exists.");
            };
            let full = json!({
                "open_id": account.open_id, "union_id": account.union_id,
                "avatar_url": account.avatar_url, "avatar_url_100": account.avatar_url,
                "avatar_large_url": account.avatar_url, "display_name": account.nickname,
                "username": account.username, "bio_description": "", "is_verified": false,
                "profile_deep_link": format!("https://www.tiktok.com/@{}", account.username),
                "follower_count": 0, "following_count": 0, "likes_count": 0, "video_count": 0,
            });
            let user: serde_json::Map<String, Value> = fields
                .iter()
                .filter_map(|f| full.get(f).map(|v| (f.clone(), v.clone())))
                .collect();
            Reply::ok(json!({ "user": user }))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::{Platform, registrable};

    /// Desktop: the registered `*` port matches any port, nothing else is loosened; Web:
    /// exact match only.
    #[test]
    fn redirect_rules() {
        let mut config = SandboxConfig::default();
        let cases = [
            ("http://127.0.0.1:3455/callback/", true),
            ("http://localhost:1/callback/", true),
            ("https://127.0.0.1:3455/callback/", false),
            ("http://127.0.0.1/callback/", false),
            ("http://127.0.0.1:3455/callback", false),
            ("http://127.0.0.1:3455/callback/?x=1", false),
            ("http://127.0.0.1:99999/callback/", false),
            ("http://127.0.0.1:34a/callback/", false),
            ("http://example.com:3455/callback/", false),
            ("not a url", false),
        ];
        for (uri, ok) in cases {
            assert_eq!(redirect_allowed(&config, uri), ok, "{uri}");
        }
        config.platform = Platform::Web;
        config.redirect_uris = vec!["https://media.example.com/oauth/callback/".into()];
        assert!(config.check().is_ok());
        assert!(redirect_allowed(
            &config,
            "https://media.example.com/oauth/callback/"
        ));
        assert!(!redirect_allowed(
            &config,
            "https://media.example.com/oauth/callback"
        ));
        assert!(!redirect_allowed(
            &config,
            "https://MEDIA.example.com/oauth/callback/"
        ));
    }

    /// What each platform's portal lets an owner register (tiktok-api.md §3.2).
    #[test]
    fn registration_rules() {
        use Platform::*;
        let cases = [
            (Desktop, "http://127.0.0.1:3455/callback/", true),
            (Desktop, "https://localhost:*/callback/", true),
            (Desktop, "http://127.0.0.1/callback/", false),
            (Desktop, "http://media.example.com:3455/callback/", false),
            (Desktop, "http://127.0.0.1:3455/callback/?a=b", false),
            (Web, "https://media.example.com/oauth/callback/", true),
            (Web, "http://media.example.com/oauth/callback/", false),
            (Web, "http://127.0.0.1:3455/callback/", false),
            (Web, "https://media.example.com:*/cb/", false),
            (Web, "https://media.example.com/cb#x", false),
        ];
        for (platform, uri, ok) in cases {
            assert_eq!(registrable(platform, uri).is_ok(), ok, "{platform:?} {uri}");
        }
        let long = format!("https://a.example.com/{}", "x".repeat(500));
        assert!(registrable(Web, &long).is_err());
    }

    /// The user's untoggled scopes are not granted, except the basic one.
    #[test]
    fn deselected_scopes_are_not_granted() {
        let account = AccountConfig {
            deselect: vec!["video.publish".into(), "user.info.basic".into()],
            ..AccountConfig::default()
        };
        let asked: Vec<String> = ["user.info.basic", "video.publish", "video.upload"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            granted(&account, &asked),
            ["user.info.basic", "video.upload"]
        );
    }
}
