//! The OAuth login against the emulator: the test plays the browser (GET the authorize URL
//! without following redirects, then GET the `Location` on the loopback listener, or paste it).

use tokdrop::tiktok::login::{LoginConfig, LoginError, LoopbackListener, PendingLogin};
use tokdrop_sandbox::SandboxEndpoint;

use crate::sandbox_harness::{Env, WAIT, fast_config};

const SCOPES: [&str; 3] = ["user.info.basic", "video.publish", "video.upload"];

fn login_config(env: &Env, redirect_uri: &str) -> LoginConfig {
    LoginConfig {
        auth_base: env.sandbox.base_url().to_string(),
        client_key: env.sandbox.config().client_key,
        redirect_uri: redirect_uri.to_string(),
        scopes: SCOPES.iter().map(|s| s.to_string()).collect(),
        pkce: Default::default(),
    }
}

fn browser() -> reqwest::Client {
    crate::harness::http()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser")
}

/// GETs the authorize URL like a browser and returns the redirect's `Location`.
async fn authorize(url: &str) -> String {
    let answer = browser().get(url).send().await.expect("authorize");
    assert_eq!(answer.status(), 302, "{:?}", answer.text().await);
    answer.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string()
}

/// Loopback login end to end: the listener gets the code, the browser gets a page, the token
/// file is written with all scopes, and the code cannot be used twice.
#[tokio::test]
async fn loopback_login_stores_the_grant() {
    let env = Env::start(fast_config()).await;
    let listener = LoopbackListener::bind("http://127.0.0.1:0/callback/")
        .await
        .expect("bind");
    let config = login_config(&env, listener.redirect_uri());
    let login = PendingLogin::new(&config, listener.redirect_uri()).expect("login");
    let state = login.state().to_string();
    let redirect_uri = listener.redirect_uri().to_string();
    let browser_side = async {
        let location = authorize(login.authorize_url()).await;
        assert!(location.starts_with(&redirect_uri), "{location}");
        let page = browser().get(&location).send().await.expect("callback");
        assert_eq!(page.status(), 200);
        assert!(page.text().await.expect("page").contains("close this tab"));
    };
    let (callback, ()) = tokio::join!(listener.wait(&state, WAIT), browser_side);
    let callback = callback.expect("callback");
    let outcome = login
        .finish(&env.tokens, "default", callback)
        .await
        .expect("finish");
    assert_eq!(outcome.granted, SCOPES);
    assert!(outcome.missing.is_empty());
    assert_eq!(outcome.open_id, env.sandbox.config().accounts[0].open_id);
    let info = env
        .tokens
        .info("default")
        .await
        .expect("info")
        .expect("file");
    assert_eq!(info.scopes, SCOPES);
    let calls = env.sandbox.calls();
    assert_eq!(calls.count(SandboxEndpoint::Authorize), 1);
    assert_eq!(calls.count(SandboxEndpoint::Token), 1);
    env.client()
        .creator_info(&env.token().await)
        .await
        .expect("the new token works");
}

/// Paste flow: the whole redirected URL is pasted; a deselected scope is reported missing.
#[tokio::test]
async fn pasted_login_reports_missing_scopes() {
    let mut sandbox = fast_config();
    sandbox.accounts[0].deselect = vec!["video.publish".into()];
    let env = Env::start(sandbox).await;
    let redirect = "http://127.0.0.1:3455/callback/";
    let login = PendingLogin::new(&login_config(&env, redirect), redirect).expect("login");
    let location = authorize(login.authorize_url()).await;
    let callback = login
        .parse_pasted(&format!("{location}\n"))
        .expect("pasted");
    assert_eq!(
        callback.scopes.as_deref(),
        Some(&["user.info.basic".to_string(), "video.upload".to_string()][..])
    );
    let outcome = login
        .finish(&env.tokens, "default", callback)
        .await
        .expect("finish");
    assert_eq!(outcome.missing, vec!["video.publish"]);
    let err = env
        .client()
        .creator_info(&env.token().await)
        .await
        .expect_err("no video.publish");
    assert_eq!(err.code, "scope_not_authorized");
}

/// A user who cancels in the browser ends the loopback wait with `access_denied`.
#[tokio::test]
async fn denied_login_is_reported() {
    let mut sandbox = fast_config();
    sandbox.deny_authorization = true;
    let env = Env::start(sandbox).await;
    let listener = LoopbackListener::bind("http://localhost:0/callback/")
        .await
        .expect("bind");
    let login = PendingLogin::new(
        &login_config(&env, listener.redirect_uri()),
        listener.redirect_uri(),
    )
    .expect("login");
    let state = login.state().to_string();
    let browser_side = async {
        let location = authorize(login.authorize_url()).await;
        let page = browser().get(&location).send().await.expect("callback");
        assert_eq!(page.status(), 400);
    };
    let (result, ()) = tokio::join!(listener.wait(&state, WAIT), browser_side);
    match result {
        Err(LoginError::Denied { error, .. }) => assert_eq!(error, "access_denied"),
        other => panic!("expected access_denied, got {other:?}"),
    }
}

/// The emulator enforces the code exchange rules: exact redirect_uri, hex PKCE, single use.
#[tokio::test]
async fn code_exchange_rules() {
    let env = Env::start(fast_config()).await;
    let redirect = "http://127.0.0.1:3455/callback/";
    let login = PendingLogin::new(&login_config(&env, redirect), redirect).expect("login");
    let code = login
        .parse_pasted(&authorize(login.authorize_url()).await)
        .expect("code")
        .code;
    let other = PendingLogin::new(&login_config(&env, redirect), redirect).expect("other");
    let client = env.client();
    let wrong_uri = client
        .exchange_code(
            &code,
            &tokdrop::tiktok::Secret::new("x".repeat(43)),
            "http://127.0.0.1:3455/other/",
        )
        .await
        .expect_err("redirect mismatch");
    assert_eq!(wrong_uri.code, "invalid_request");
    assert!(wrong_uri.message.contains("Redirect_uri"), "{wrong_uri}");
    let wrong_verifier = client
        .exchange_code(
            &code,
            &tokdrop::tiktok::Secret::new("y".repeat(43)),
            redirect,
        )
        .await
        .expect_err("pkce");
    assert!(
        wrong_verifier.message.contains("Code verifier"),
        "{wrong_verifier}"
    );
    drop(other);
    let callback = tokdrop::tiktok::login::Callback {
        code: code.clone(),
        scopes: None,
    };
    login
        .finish(&env.tokens, "default", callback)
        .await
        .expect("first use");
    let reuse = client
        .exchange_code(
            &code,
            &tokdrop::tiktok::Secret::new("z".repeat(43)),
            redirect,
        )
        .await
        .expect_err("single use");
    assert_eq!(reuse.code, "invalid_grant");
}

/// `tiktok.pkce_challenge: base64url` writes RFC 7636's challenge: an app that takes it logs
/// in; one that wants TikTok's documented hex refuses it at the authorize page.
#[tokio::test]
async fn base64url_challenge_is_configurable() {
    let mut sandbox = fast_config();
    sandbox.accept_base64url_challenge = true;
    let env = Env::start(sandbox).await;
    let redirect = "http://127.0.0.1:3455/callback/";
    let config = LoginConfig {
        pkce: tokdrop::tiktok::pkce::ChallengeEncoding::Base64url,
        ..login_config(&env, redirect)
    };
    let login = PendingLogin::new(&config, redirect).expect("login");
    let challenge = url::Url::parse(login.authorize_url())
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code_challenge")
        .map(|(_, v)| v.into_owned())
        .expect("challenge");
    assert_eq!(challenge.len(), 43, "{challenge}");
    let location = authorize(login.authorize_url()).await;
    let callback = login.parse_pasted(&location).expect("pasted");
    login
        .finish(&env.tokens, "default", callback)
        .await
        .expect("the base64url verifier matches");

    env.sandbox.set(|c| c.accept_base64url_challenge = false);
    let login = PendingLogin::new(&config, redirect).expect("login");
    let location = authorize(login.authorize_url()).await;
    assert!(location.contains("error=invalid_request"), "{location}");
}
