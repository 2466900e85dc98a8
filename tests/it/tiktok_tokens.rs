//! `TokenManager` against a scripted token endpoint: refresh ahead of expiry, rotation
//! persisted, refreshes serialized within and across managers, rejected refresh → needs login.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokdrop::tiktok::wire;
use tokdrop::tiktok::{
    AccountPause, AuthError, ErrorClass, Secret, TokenFile, TokenManager, TokenStore,
};

use crate::tiktok_client::client;
use crate::tiktok_mock::{Mock, Reply};

fn file(access_left: i64) -> TokenFile {
    let now = Timestamp::now();
    TokenFile {
        open_id: "open-1".into(),
        scope: "user.info.basic,video.publish".into(),
        access_token: Secret::new("act.OLD"),
        access_expires_at: now + SignedDuration::from_secs(access_left),
        refresh_token: Secret::new("rft.OLD"),
        refresh_expires_at: now + SignedDuration::from_hours(24 * 100),
    }
}

fn grant() -> Reply {
    Reply::json(
        200,
        json!({
            "access_token": "act.NEW", "expires_in": 7200, "open_id": "open-1",
            "refresh_token": "rft.NEW", "refresh_expires_in": 15552000,
            "scope": "user.info.basic,video.publish", "token_type": "Bearer"
        }),
    )
}

fn manager(mock: &Mock, dir: &std::path::Path) -> TokenManager {
    TokenManager::new(client(&mock.base()), TokenStore::new(dir))
}

/// A token with two hours left is used as is; no call to TikTok.
#[tokio::test]
async fn fresh_token_is_used_without_refresh() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    TokenStore::new(dir.path())
        .save("default", &file(7200))
        .expect("save");
    let token = manager(&mock, dir.path())
        .access_token("default")
        .await
        .expect("token");
    assert_eq!(token.expose(), "act.OLD");
    assert!(mock.seen(wire::OAUTH_TOKEN).is_empty());
}

/// Ten concurrent callers of an expiring token cause one refresh; the rotated refresh token
/// is on disk when they get the new access token.
#[tokio::test]
async fn concurrent_refreshes_are_serialized() {
    let mock = Mock::start().await;
    mock.default(wire::OAUTH_TOKEN, grant());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TokenStore::new(dir.path());
    store.save("default", &file(300)).expect("save");
    let tm = Arc::new(manager(&mock, dir.path()));
    let other_process = Arc::new(manager(&mock, dir.path()));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let tm = if i % 2 == 0 {
            tm.clone()
        } else {
            other_process.clone()
        };
        tasks.push(tokio::spawn(
            async move { tm.access_token("default").await },
        ));
    }
    for task in tasks {
        assert_eq!(
            task.await.expect("task").expect("token").expose(),
            "act.NEW"
        );
    }
    assert_eq!(mock.seen(wire::OAUTH_TOKEN).len(), 1);
    let form = String::from_utf8(mock.seen(wire::OAUTH_TOKEN)[0].body.to_vec()).expect("utf8");
    assert!(
        form.contains("grant_type=refresh_token") && form.contains("refresh_token=rft.OLD"),
        "{form}"
    );
    let stored = store.load("default").expect("load").expect("file");
    assert_eq!(stored.refresh_token.expose(), "rft.NEW");
    assert_eq!(stored.scope, "user.info.basic,video.publish");
}

/// A refused access token is refreshed once; a caller holding the already replaced token
/// gets the new one without another refresh.
#[tokio::test]
async fn rejected_access_token_refreshes_once() {
    let mock = Mock::start().await;
    mock.default(wire::OAUTH_TOKEN, grant());
    let dir = tempfile::tempdir().expect("tempdir");
    TokenStore::new(dir.path())
        .save("default", &file(7200))
        .expect("save");
    let tm = manager(&mock, dir.path());
    let old = Secret::new("act.OLD");
    assert_eq!(
        tm.refresh_rejected("default", &old)
            .await
            .expect("refresh")
            .expose(),
        "act.NEW"
    );
    assert_eq!(
        tm.refresh_rejected("default", &old)
            .await
            .expect("reuse")
            .expose(),
        "act.NEW"
    );
    assert_eq!(mock.seen(wire::OAUTH_TOKEN).len(), 1);
}

/// invalid_grant on refresh puts the account in "needs login" without further calls, until a
/// new login is stored.
#[tokio::test]
async fn rejected_refresh_token_needs_login() {
    let mock = Mock::start().await;
    mock.default(wire::OAUTH_TOKEN, Reply::json(200, json!({"error": "invalid_grant", "error_description": "Refresh token is invalid or expired.", "log_id": "L"})));
    let dir = tempfile::tempdir().expect("tempdir");
    TokenStore::new(dir.path())
        .save("default", &file(60))
        .expect("save");
    let tm = manager(&mock, dir.path());
    for _ in 0..3 {
        let err = tm.access_token("default").await.expect_err("needs login");
        assert!(matches!(err, AuthError::NeedsLogin { .. }), "{err:?}");
        assert_eq!(
            err.class(),
            ErrorClass::AccountWide(AccountPause::NeedsLogin)
        );
        assert!(
            err.to_string()
                .contains("tokdrop auth login --account default")
        );
    }
    assert_eq!(mock.seen(wire::OAUTH_TOKEN).len(), 1);
    let grant: wire::TokenResponse = serde_json::from_value(json!({
        "access_token": "act.LOGIN", "expires_in": 7200, "open_id": "open-1",
        "refresh_token": "rft.LOGIN", "refresh_expires_in": 15552000, "scope": "video.publish"
    }))
    .expect("grant");
    tm.store_grant("default", &grant).await.expect("store");
    assert_eq!(
        tm.access_token("default").await.expect("token").expose(),
        "act.LOGIN"
    );
}

/// No token file: "not logged in", naming the command to run.
#[tokio::test]
async fn missing_login_is_reported() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = manager(&mock, dir.path())
        .access_token("shop")
        .await
        .expect_err("no file");
    assert_eq!(
        err.to_string(),
        "account 'shop' is not logged in; run `tokdrop auth login --account shop`"
    );
}
