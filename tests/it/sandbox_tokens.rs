//! Token lifecycle against the emulator: refresh with rotation, serialized refreshes, a
//! rejected refresh token, `with_token`'s refresh-once rule, user/info scopes, logout.

use std::sync::Arc;

use tokdrop::tiktok::{
    AccountPause, AuthAction, AuthError, AuthorizedError, ErrorClass, TokenManager, TokenStore,
};
use tokdrop_sandbox::{Control, Fault, SandboxEndpoint};

use crate::sandbox_harness::{Env, fast_config};

/// Refreshes counted at the emulator.
fn refreshes(env: &Env) -> usize {
    env.sandbox
        .calls()
        .of(SandboxEndpoint::Token)
        .iter()
        .filter(|c| c.detail.as_deref() == Some("refresh_token"))
        .count()
}

/// An access token close to expiry is refreshed; the rotated refresh token is stored and the
/// old one is rejected with invalid_grant afterwards.
#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let mut config = fast_config();
    config.access_token_secs = 60;
    let env = Env::start(config).await;
    let grant = serde_json::from_value::<tokdrop::tiktok::wire::TokenResponse>(
        env.sandbox.issue_token(None).expect("grant"),
    )
    .expect("the emulator\'s token answer parses");
    env.tokens
        .store_grant("default", &grant)
        .await
        .expect("store");
    let fresh = env.token().await;
    assert_ne!(fresh, grant.access_token);
    assert_eq!(refreshes(&env), 1);
    let stored = env
        .tokens
        .store()
        .load("default")
        .expect("load")
        .expect("file");
    assert_ne!(stored.refresh_token, grant.refresh_token);
    let old = env
        .client()
        .refresh(&grant.refresh_token)
        .await
        .expect_err("rotated away");
    assert_eq!(old.code, "invalid_grant");
    assert_eq!(
        old.class(),
        ErrorClass::AccountWide(AccountPause::NeedsLogin)
    );
    env.client()
        .refresh(&stored.refresh_token)
        .await
        .expect("the new refresh token works");
}

/// Ten concurrent callers on two managers (as two processes) cause one refresh at TikTok.
#[tokio::test]
async fn concurrent_refreshes_reach_the_emulator_once() {
    let mut config = fast_config();
    config.access_token_secs = 60;
    let env = Env::logged_in(config).await;
    // The stored token expires soon; the refreshed one will not.
    env.sandbox.set(|c| c.access_token_secs = 7200);
    let one = Arc::new(TokenManager::new(
        env.client().clone(),
        TokenStore::new(env.tokens.store().dir()),
    ));
    let two = Arc::new(TokenManager::new(
        env.client().clone(),
        TokenStore::new(env.tokens.store().dir()),
    ));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let tm = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move { tm.access_token("default").await })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.expect("task").expect("token"));
    }
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(refreshes(&env), 1);
}

/// A refresh token the emulator no longer knows puts the account in "needs login".
#[tokio::test]
async fn rejected_refresh_token_needs_login() {
    let mut config = fast_config();
    config.access_token_secs = 60;
    let env = Env::logged_in(config).await;
    env.sandbox
        .control(Control {
            revoke_refresh_tokens: true,
            ..Control::default()
        })
        .expect("control");
    let err = env
        .tokens
        .access_token("default")
        .await
        .expect_err("rejected");
    assert!(matches!(err, AuthError::NeedsLogin { .. }), "{err:?}");
    assert_eq!(
        err.class(),
        ErrorClass::AccountWide(AccountPause::NeedsLogin)
    );
    env.tokens.access_token("default").await.expect_err("still");
    assert_eq!(refreshes(&env), 1, "no second refresh attempt");
}

/// `with_token`: a refused access token is refreshed once and the call repeated; refused
/// again right after the refresh, the error says the login is unusable.
#[tokio::test]
async fn with_token_refreshes_once() {
    let env = Env::logged_in(fast_config()).await;
    env.sandbox
        .control(Control {
            expire_access_tokens: true,
            ..Control::default()
        })
        .expect("control");
    let client = env.client();
    let info = env
        .tokens
        .with_token("default", |token| async move {
            client.creator_info(&token).await
        })
        .await
        .expect("after one refresh");
    assert_eq!(info.creator_username, "tokdrop.sandbox");
    let calls = env.sandbox.calls();
    let codes: Vec<_> = calls
        .of(SandboxEndpoint::CreatorInfo)
        .iter()
        .map(|c| c.code.clone())
        .collect();
    assert_eq!(codes, ["access_token_invalid", "ok"]);
    assert_eq!(refreshes(&env), 1);

    env.sandbox.set(|c| {
        c.faults.push(Fault::error(
            SandboxEndpoint::CreatorInfo,
            401,
            "access_token_invalid",
            2,
        ))
    });
    let err = env
        .tokens
        .with_token("default", |token| async move {
            client.creator_info(&token).await
        })
        .await
        .expect_err("refused twice");
    assert!(
        matches!(err, AuthorizedError::RejectedAfterRefresh(_)),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Auth(AuthAction::Relogin));
    assert_eq!(refreshes(&env), 2);
}

/// user/info: `username` needs user.info.profile (tiktok-api.md §3.8), which tokdrop's
/// default scopes do not include.
#[tokio::test]
async fn user_info_needs_the_profile_scope() {
    let mut config = fast_config();
    config.accounts[0].deselect = vec!["user.info.profile".into()];
    let env = Env::logged_in(config).await;
    let err = env
        .client()
        .user_info(&env.token().await)
        .await
        .expect_err("username needs user.info.profile");
    assert_eq!(err.code, "scope_permission_missed");
    assert_eq!(err.http_status, Some(400));
}

/// Logout revokes at the emulator: the access token stops working and the file is gone.
#[tokio::test]
async fn logout_revokes() {
    let env = Env::logged_in(fast_config()).await;
    let token = env.token().await;
    assert!(env.tokens.logout("default", false).await.expect("logout"));
    assert_eq!(env.sandbox.calls().count(SandboxEndpoint::Revoke), 1);
    let err = env
        .client()
        .creator_info(&token)
        .await
        .expect_err("revoked");
    assert_eq!(err.code, "access_token_invalid");
    assert!(env.tokens.info("default").await.expect("info").is_none());
}

/// TikTok revokes only with a live access token (tiktok-api.md §3.6), and access tokens live
/// 2 hours: a logout after the access token expired refreshes first, so the grant really
/// ends; one that TikTok expired early is refreshed once after the refusal.
#[tokio::test]
async fn logout_after_the_access_token_expired_revokes_the_grant() {
    // Expired by the token file's clock: refreshed before the revoke.
    let mut config = fast_config();
    config.access_token_secs = 1;
    let env = Env::logged_in(config).await;
    assert!(env.tokens.logout("default", false).await.expect("logout"));
    let calls = env.sandbox.calls();
    assert_eq!(refreshes(&env), 1);
    assert_eq!(calls.revokes.len(), 1);
    assert!(calls.revokes[0].revoked, "{:?}", calls.revokes);

    // Expired by TikTok only: the first revoke is refused, then refresh and revoke again.
    let env = Env::logged_in(fast_config()).await;
    env.sandbox
        .control(Control {
            expire_access_tokens: true,
            ..Control::default()
        })
        .expect("control");
    assert!(env.tokens.logout("default", false).await.expect("logout"));
    let calls = env.sandbox.calls();
    let revoked: Vec<bool> = calls.revokes.iter().map(|r| r.revoked).collect();
    assert_eq!(revoked, [false, true]);
    assert_eq!(refreshes(&env), 1);
    assert!(env.tokens.info("default").await.expect("info").is_none());
}
