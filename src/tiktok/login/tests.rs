//! Authorize URL, redirect and paste parsing.

use super::*;

fn config() -> LoginConfig {
    LoginConfig {
        auth_base: "https://www.tiktok.com/".into(),
        client_key: "awEXAMPLEKEY".into(),
        redirect_uri: "http://127.0.0.1:3455/callback/".into(),
        scopes: vec![
            "user.info.basic".into(),
            "video.publish".into(),
            "video.upload".into(),
        ],
        pkce: Default::default(),
    }
}

/// The URL matches tiktok-api.md §3.3's example: trailing slash, comma scopes, hex S256.
#[test]
fn authorize_url_matches_the_documented_example() {
    let url = authorize_url(
        &config(),
        "http://127.0.0.1:3455/callback/",
        "Zk3x9",
        "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3",
    )
    .expect("url");
    assert_eq!(
        url,
        "https://www.tiktok.com/v2/auth/authorize/?client_key=awEXAMPLEKEY&response_type=code\
         &scope=user.info.basic%2Cvideo.publish%2Cvideo.upload\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A3455%2Fcallback%2F&state=Zk3x9\
         &code_challenge=13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3\
         &code_challenge_method=S256"
    );
    assert!(matches!(
        authorize_url(
            &LoginConfig {
                auth_base: "not a url".into(),
                ..config()
            },
            "x",
            "s",
            "c"
        ),
        Err(LoginError::AuthBase(_))
    ));
}

/// Redirect queries: code and scopes decoded, errors and state mismatches reported.
#[test]
fn redirect_queries() {
    let ok = callback_from_query(
        "code=abc%2A0%214&scopes=user.info.basic%2Cvideo.publish&state=S",
        Some("S"),
        true,
    )
    .expect("ok");
    assert_eq!(ok.code.expose(), "abc*0!4");
    assert_eq!(
        ok.scopes,
        Some(vec!["user.info.basic".into(), "video.publish".into()])
    );
    let cases = [
        ("code=a&state=OTHER", "state"),
        ("code=a", "state"),
        ("error=access_denied&error_description=no&state=S", "denied"),
        ("state=S", "nocode"),
        ("code=&state=S", "nocode"),
    ];
    for (query, kind) in cases {
        let err = callback_from_query(query, Some("S"), true).expect_err(query);
        let matched = match kind {
            "state" => matches!(err, LoginError::StateMismatch),
            "denied" => {
                matches!(&err, LoginError::Denied { error, .. } if error == "access_denied")
            }
            _ => matches!(err, LoginError::NoCode(_)),
        };
        assert!(matched, "{query}: {err:?}");
    }
}

/// Pasted input: a full URL (state checked when present), a query, or a bare code.
#[test]
fn pasted_input() {
    let login = PendingLogin::new(&config(), "http://127.0.0.1:3455/callback/").expect("login");
    let state = login.state().to_string();
    let url =
        format!("http://127.0.0.1:3455/callback/?code=C%2A1&scopes=video.publish&state={state}\n");
    assert_eq!(login.parse_pasted(&url).expect("url").code.expose(), "C*1");
    assert_eq!(
        login
            .parse_pasted("http://127.0.0.1:3455/callback/?code=C2")
            .expect("no state")
            .code
            .expose(),
        "C2"
    );
    assert!(matches!(
        login.parse_pasted("http://127.0.0.1:3455/callback/?code=C&state=evil"),
        Err(LoginError::StateMismatch)
    ));
    assert_eq!(
        login
            .parse_pasted("  ?code=Q&x=1 ")
            .expect("query")
            .code
            .expose(),
        "Q"
    );
    let bare = login.parse_pasted("  sbx%2Aabc+d!4 ").expect("bare");
    assert_eq!(bare.code.expose(), "sbx*abc+d!4");
    assert!(bare.scopes.is_none());
    assert!(matches!(
        login.parse_pasted("   "),
        Err(LoginError::NoCode(_))
    ));
    assert!(matches!(
        login.parse_pasted("two words"),
        Err(LoginError::NoCode(_))
    ));
    let url = url::Url::parse(login.authorize_url()).expect("url");
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "state" && v == state.as_str())
    );
}

/// Only http loopback redirect URIs with a port can be listened on.
#[tokio::test]
async fn loopback_bind_rules() {
    for (uri, ok) in [
        ("http://127.0.0.1:0/callback/", true),
        ("http://localhost:0/cb", true),
        ("https://127.0.0.1:0/callback/", false),
        ("http://example.com:0/callback/", false),
        ("http://127.0.0.1/callback/", false),
    ] {
        let result = LoopbackListener::bind(uri).await;
        assert_eq!(result.is_ok(), ok, "{uri}: {result:?}");
        if let Ok(l) = result {
            assert!(!l.redirect_uri().contains(":0/"), "{}", l.redirect_uri());
        }
    }
}

/// The redirect URI is sent exactly as configured (TikTok compares strings): no lower-casing,
/// no added slash; only port 0 (a Desktop app registered with the `*` port) becomes the port
/// bound.
#[tokio::test]
async fn loopback_redirect_is_sent_as_configured() {
    let l = LoopbackListener::bind("http://LOCALHOST:0/callback")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    assert_eq!(
        l.redirect_uri(),
        format!("http://LOCALHOST:{port}/callback")
    );
    let l = LoopbackListener::bind("http://127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    assert_eq!(l.redirect_uri(), format!("http://127.0.0.1:{port}"));
}
