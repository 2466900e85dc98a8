//! Conformance fixtures, emulator side. `tests/fixtures/tiktok/*.json` (at the workspace root)
//! holds request → response pairs taken from TikTok's documentation (tiktok-api.md); tokdrop's
//! client reads the same files in `tests/it/conformance.rs`. Here each fixture's `emulator`
//! section says how to make the emulator give that answer:
//!
//! - `config`: a JSON merge patch of [`SandboxConfig`] the emulator starts with;
//! - `setup`: steps run first (`authorize`, `login`, `init`, `upload`, `wait_status`, `send`);
//! - `token`: the bearer token of the request (default `$access_token`, the login's);
//! - `request_patch`: a merge patch of the fixture's `request` (`$name` strings are the values
//!   the setup captured: `$code`, `$access_token`, `$refresh_token`, `$publish_id`,
//!   `$upload_url`; `url` replaces base + path);
//! - `any_value`: JSON pointers whose value is not compared (only that the key is there).
//!
//! The answer must match the fixture's `response`: same HTTP status, same keys at every level,
//! `error.code` / OAuth `error`, `status`, `fail_reason` and `token_type` equal, values of the
//! same JSON type, and random values (log ids, tokens, publish ids, upload URLs, 19-digit post
//! ids) of the same form. Fixtures the emulator cannot be driven to carry `emulator_skip`;
//! `emulator_gap` marks a known disagreement with the docs, which must still be there (so a
//! fix makes this test fail until the marker is removed).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokdrop_sandbox::config::merge_patch;
use tokdrop_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    name: String,
    doc: String,
    endpoint: String,
    request: Value,
    response: Response,
    #[allow(dead_code)]
    client: Value,
    #[serde(default)]
    #[allow(dead_code)]
    client_gap: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    client_current: Option<Value>,
    #[serde(default)]
    emulator: Option<Emulator>,
    #[serde(default)]
    emulator_skip: Option<String>,
    /// A known disagreement of the emulator with the docs: the comparison must still fail.
    #[serde(default)]
    emulator_gap: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Response {
    http_status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    body_text: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Emulator {
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    setup: Vec<Value>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    request_patch: Option<Value>,
    #[serde(default)]
    any_value: Vec<String>,
    /// Why the emulator is driven the way it is.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

/// The request as sent, after the patch and the substitutions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    method: String,
    path: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    form: Option<BTreeMap<String, String>>,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiktok")
}

fn load() -> Vec<Fixture> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut fixtures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("fixture file");
        let list: Vec<Fixture> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        fixtures.extend(list);
    }
    fixtures
}

/// API path of each endpoint that takes a bearer token.
fn bearer_path(endpoint: &str) -> Option<&'static str> {
    Some(match endpoint {
        "user_info" => "/v2/user/info/",
        "creator_info" => "/v2/post/publish/creator_info/query/",
        "video_init" => "/v2/post/publish/video/init/",
        "inbox_video_init" => "/v2/post/publish/inbox/video/init/",
        "content_init" => "/v2/post/publish/content/init/",
        "status_fetch" => "/v2/post/publish/status/fetch/",
        "cancel" => "/v2/post/publish/cancel/",
        _ => return None,
    })
}

/// One emulator run: its handle, an HTTP client and what the setup captured.
struct Run {
    sandbox: SandboxHandle,
    http: reqwest::Client,
    vars: HashMap<String, String>,
    /// `(video_size, chunk_size, total_chunk_count)` of the last FILE_UPLOAD init.
    plan: Option<(u64, u64, u64)>,
}

/// An answer, read in full.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

type Outcome<T> = Result<T, String>;

impl Run {
    async fn start(emulator: &Emulator) -> Outcome<Self> {
        let mut config = serde_json::to_value(SandboxConfig::default()).expect("config json");
        // The fixtures send patterned bytes, not media: processing's media checks stay off
        // unless a fixture turns them on.
        config["check_media"] = serde_json::Value::Bool(false);
        if let Some(patch) = &emulator.config {
            merge_patch(&mut config, patch);
        }
        let config: SandboxConfig =
            serde_json::from_value(config).map_err(|e| format!("emulator.config: {e}"))?;
        let sandbox = Sandbox::start(config)
            .await
            .map_err(|e| format!("start: {e}"))?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let mut run = Self {
            sandbox,
            http,
            vars: HashMap::new(),
            plan: None,
        };
        run.login(None)?;
        Ok(run)
    }

    fn login(&mut self, open_id: Option<&str>) -> Outcome<()> {
        let token = self
            .sandbox
            .issue_token(open_id)
            .map_err(|e| format!("login: {e}"))?;
        for key in ["access_token", "refresh_token", "open_id"] {
            let value = token[key].as_str().ok_or(format!("login: no {key}"))?;
            self.vars.insert(key.into(), value.into());
        }
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    /// Replaces every string `$name` by the captured value.
    fn substitute(&self, value: &mut Value) -> Outcome<()> {
        match value {
            Value::String(s) if s.starts_with('$') => {
                let found = self
                    .vars
                    .get(&s[1..])
                    .ok_or_else(|| format!("{s} was not captured by the setup"))?;
                *s = found.clone();
            }
            Value::Array(items) => {
                for item in items {
                    self.substitute(item)?;
                }
            }
            Value::Object(map) => {
                for item in map.values_mut() {
                    self.substitute(item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn send(&self, request: &Request, bearer: Option<&str>) -> Outcome<Answer> {
        let url = request
            .url
            .clone()
            .unwrap_or_else(|| self.url(&request.path));
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| format!("method: {e}"))?;
        let mut builder = self.http.request(method, &url);
        if let Some(token) = bearer {
            builder = builder.bearer_auth(token);
        }
        for (name, value) in &request.headers {
            if !name.eq_ignore_ascii_case("content-length") {
                builder = builder.header(name, value);
            }
        }
        if let Some(form) = &request.form {
            builder = builder.form(form);
        } else if let Some(body) = &request.body {
            builder = builder
                .header("Content-Type", "application/json; charset=UTF-8")
                .body(body.to_string());
        } else if let Some(length) = request.headers.get("Content-Length") {
            let length: usize = length.parse().map_err(|e| format!("Content-Length: {e}"))?;
            builder = builder.body(vec![0u8; length]);
        }
        let response = builder.send().await.map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("read: {e}"))?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn step(&mut self, step: &Value) -> Outcome<()> {
        let what = step["do"].as_str().unwrap_or_default();
        match what {
            "authorize" => {
                let mut query = step["query"].clone();
                self.substitute(&mut query)?;
                let query: BTreeMap<String, String> =
                    serde_json::from_value(query).map_err(|e| format!("authorize: {e}"))?;
                let response = self
                    .http
                    .get(self.url("/v2/auth/authorize/"))
                    .query(&query)
                    .send()
                    .await
                    .map_err(|e| format!("authorize: {e}"))?;
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or(format!(
                        "authorize: HTTP {} without a redirect",
                        response.status()
                    ))?;
                let url = url::Url::parse(location).map_err(|e| format!("authorize: {e}"))?;
                let pairs: HashMap<String, String> = url.query_pairs().into_owned().collect();
                let code = pairs
                    .get("code")
                    .ok_or(format!("authorize: no code in {location}"))?;
                self.vars.insert("code".into(), code.clone());
            }
            "login" => self.login(step["open_id"].as_str())?,
            "init" => {
                let endpoint = step["endpoint"].as_str().unwrap_or_default();
                let path = bearer_path(endpoint).ok_or(format!("init: {endpoint}?"))?;
                let mut body = step["body"].clone();
                self.substitute(&mut body)?;
                let source = &body["source_info"];
                if source["source"] == "FILE_UPLOAD" {
                    let n = |k: &str| source[k].as_u64().unwrap_or_default();
                    self.plan = Some((n("video_size"), n("chunk_size"), n("total_chunk_count")));
                }
                let request = Request {
                    method: "POST".into(),
                    path: path.into(),
                    url: None,
                    headers: BTreeMap::new(),
                    body: Some(body),
                    form: None,
                };
                let token = self.vars["access_token"].clone();
                let answer = self.send(&request, Some(&token)).await?;
                let json: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                if answer.status != 200 || json["error"]["code"] != "ok" {
                    return Err(format!(
                        "init: HTTP {} {}",
                        answer.status,
                        String::from_utf8_lossy(&answer.body)
                    ));
                }
                for key in ["publish_id", "upload_url"] {
                    if let Some(value) = json["data"][key].as_str() {
                        self.vars.insert(key.into(), value.into());
                    }
                }
            }
            "upload" => {
                let (size, chunk, count) = self.plan.ok_or("upload: no FILE_UPLOAD init")?;
                let url = self
                    .vars
                    .get("upload_url")
                    .cloned()
                    .ok_or("no upload_url")?;
                let chunks = step["chunks"].as_u64().unwrap_or(count);
                for index in 0..chunks {
                    let first = index * chunk;
                    let last = if index + 1 == count {
                        size - 1
                    } else {
                        first + chunk - 1
                    };
                    let response = self
                        .http
                        .put(&url)
                        .header("Content-Type", "video/mp4")
                        .header("Content-Range", format!("bytes {first}-{last}/{size}"))
                        .body(vec![0u8; (last - first + 1) as usize])
                        .send()
                        .await
                        .map_err(|e| format!("upload: {e}"))?;
                    if !matches!(response.status().as_u16(), 201 | 206) {
                        return Err(format!("upload chunk {index}: HTTP {}", response.status()));
                    }
                }
            }
            "wait_status" => {
                let publish_id = self
                    .vars
                    .get("publish_id")
                    .cloned()
                    .ok_or("no publish_id")?;
                let status = step["status"].as_str().unwrap_or_default().to_string();
                let with_ids = step["post_ids"].as_bool().unwrap_or(false);
                self.sandbox
                    .wait_until(Duration::from_secs(5), |calls| {
                        calls
                            .posts
                            .iter()
                            .find(|p| {
                                p.publish_id == publish_id
                                    && p.status == status
                                    && (!with_ids || !p.post_ids.is_empty())
                            })
                            .map(|_| ())
                    })
                    .await
                    .map_err(|e| format!("wait_status {status}: {e}"))?;
            }
            "send" => {
                let mut request = step["request"].clone();
                self.substitute(&mut request)?;
                let request: Request =
                    serde_json::from_value(request).map_err(|e| format!("send: {e}"))?;
                let answer = self.send(&request, None).await?;
                if !(200..300).contains(&answer.status) {
                    return Err(format!("send: HTTP {}", answer.status));
                }
            }
            other => return Err(format!("unknown setup step {other:?}")),
        }
        Ok(())
    }
}

/// Drives the emulator to the fixture's answer; the differences found.
async fn run_fixture(fixture: &Fixture, emulator: &Emulator) -> Outcome<Vec<String>> {
    let mut run = Run::start(emulator).await?;
    for step in &emulator.setup {
        run.step(step).await?;
    }
    let mut request = fixture.request.clone();
    if let Some(patch) = &emulator.request_patch {
        merge_patch(&mut request, patch);
    }
    run.substitute(&mut request)?;
    let request: Request = serde_json::from_value(request).map_err(|e| format!("request: {e}"))?;
    let bearer = match bearer_path(&fixture.endpoint) {
        Some(_) => {
            let mut token = Value::String(emulator.token.clone().unwrap_or("$access_token".into()));
            run.substitute(&mut token)?;
            token.as_str().map(str::to_string)
        }
        None => None,
    };
    let answer = run.send(&request, bearer.as_deref()).await?;
    let problems = compare(&fixture.response, &answer, &emulator.any_value);
    run.sandbox.shutdown().await;
    Ok(problems)
}

/// Differences between the fixture's response and the emulator's answer.
fn compare(want: &Response, got: &Answer, any_value: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let text = String::from_utf8_lossy(&got.body);
    if got.status != want.http_status {
        problems.push(format!(
            "HTTP {} expected, got {} ({text})",
            want.http_status, got.status
        ));
    }
    let got_type = got
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let media_type = |t: &str| t.split(';').next().unwrap_or_default().trim().to_string();
    for (name, value) in &want.headers {
        let sent = got.headers.get(name).and_then(|v| v.to_str().ok());
        let same = match sent {
            Some(sent) if name.eq_ignore_ascii_case("content-range") => {
                range_form(sent) == range_form(value)
            }
            Some(sent) => sent == value,
            None => false,
        };
        if !same {
            problems.push(format!("header {name}: expected {value:?}, got {sent:?}"));
        }
    }
    if let Some(content_type) = &want.content_type
        && media_type(&got_type) != media_type(&content_type.to_ascii_lowercase())
    {
        problems.push(format!(
            "content type: expected {content_type}, got {got_type:?}"
        ));
    }
    match (&want.body, &want.body_text) {
        (Some(body), _) => match serde_json::from_slice::<Value>(&got.body) {
            Ok(json) => shape("", "", body, &json, any_value, &mut problems),
            Err(_) => problems.push(format!("body: expected JSON, got {text:?}")),
        },
        (None, Some(expected)) if expected.is_empty() && !got.body.is_empty() => {
            problems.push(format!("body: expected none, got {text:?}"));
        }
        (None, Some(expected)) if !expected.is_empty() && got.body.is_empty() => {
            problems.push("body: expected a page, got none".into());
        }
        _ => {}
    }
    problems
}

/// `bytes N-M/T` → `range`, `bytes */T` → `star`.
fn range_form(value: &str) -> &'static str {
    let Some(rest) = value.strip_prefix("bytes ") else {
        return "malformed";
    };
    let Some((span, total)) = rest.split_once('/') else {
        return "malformed";
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(total) {
        return "malformed";
    }
    match span.split_once('-') {
        Some((a, b)) if digits(a) && digits(b) => "range",
        None if span == "*" => "star",
        _ => "malformed",
    }
}

/// Fields whose value must be equal, not just of the same type.
const EXACT: &[&str] = &[
    "/error/code",
    "/error",
    "/data/status",
    "/data/fail_reason",
    "/token_type",
];

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether a random value has the documented form; `None` when the key has no such rule.
fn form_ok(key: &str, value: &Value) -> Option<bool> {
    let s = value.as_str();
    Some(match key {
        "log_id" | "logid" => s.is_some_and(|s| {
            s.is_ascii()
                && s.len() >= 24
                && s[..14].bytes().all(|b| b.is_ascii_digit())
                && s[14..]
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))
        }),
        "access_token" => s.is_some_and(|s| s.len() > 4 && s.starts_with("act.")),
        "refresh_token" => s.is_some_and(|s| s.len() > 4 && s.starts_with("rft.")),
        "publish_id" => s.is_some_and(|s| {
            let (kind, rest) = s.split_once('~').unwrap_or_default();
            s.len() <= 64
                && rest.starts_with("v2")
                && kind.split('_').count() == 3
                && (kind.starts_with("v_") || kind.starts_with("p_"))
        }),
        "upload_url" => s.is_some_and(|s| {
            s.len() <= 256
                && url::Url::parse(s).is_ok_and(|u| {
                    let keys: Vec<String> = u.query_pairs().map(|(k, _)| k.into_owned()).collect();
                    keys.iter().any(|k| k == "upload_id")
                        && keys.iter().any(|k| k == "upload_token")
                })
        }),
        // 19-digit int64 JSON numbers (tiktok-api.md §2.3).
        "publicaly_available_post_id" => value.as_u64().is_some_and(|n| n.to_string().len() == 19),
        _ => return None,
    })
}

/// Compares `got` with `want` at JSON pointer `path` (whose last key is `key`).
fn shape(path: &str, key: &str, want: &Value, got: &Value, any: &[String], out: &mut Vec<String>) {
    if any.iter().any(|p| p == path) {
        return;
    }
    let at = if path.is_empty() { "/" } else { path };
    if json_type(want) != json_type(got) {
        out.push(format!(
            "{at}: expected {} ({want}), got {} ({got})",
            json_type(want),
            json_type(got)
        ));
        return;
    }
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let missing: Vec<&String> = w.keys().filter(|k| !g.contains_key(*k)).collect();
            let extra: Vec<&String> = g.keys().filter(|k| !w.contains_key(*k)).collect();
            if !missing.is_empty() || !extra.is_empty() {
                out.push(format!(
                    "{at}: keys missing {missing:?}, unexpected {extra:?}"
                ));
            }
            for (k, w) in w {
                if let Some(g) = g.get(k) {
                    shape(&format!("{path}/{k}"), k, w, g, any, out);
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.is_empty() != g.is_empty() {
                out.push(format!("{at}: expected {want}, got {got}"));
            }
            if let Some(first) = w.first() {
                for (i, item) in g.iter().enumerate() {
                    shape(&format!("{path}/{i}"), key, first, item, any, out);
                }
            }
        }
        _ => {
            if EXACT.contains(&path) {
                if want != got {
                    out.push(format!("{at}: expected {want}, got {got}"));
                }
            } else if !got.is_null()
                && let Some(false) = form_ok(key, got)
            {
                out.push(format!("{at}: {got} does not have the form of {want}"));
            }
        }
    }
}

/// Every fixture the emulator can be driven to: it gives the documented answer.
#[tokio::test]
async fn conformance_fixtures_through_the_emulator() {
    let fixtures = load();
    assert!(
        !fixtures.is_empty(),
        "no fixtures in {}",
        fixture_dir().display()
    );
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut gaps = Vec::new();
    for fixture in &fixtures {
        let emulator = match (&fixture.emulator, &fixture.emulator_skip) {
            (Some(emulator), None) => emulator,
            (None, Some(reason)) => {
                skipped.push(format!("{}: {reason}", fixture.name));
                continue;
            }
            _ => {
                failures.push(format!("{}: needs emulator or emulator_skip", fixture.name));
                continue;
            }
        };
        let outcome = tokio::time::timeout(Duration::from_secs(20), run_fixture(fixture, emulator))
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        match (outcome, &fixture.emulator_gap) {
            (Ok(problems), Some(gap)) if problems.is_empty() => failures.push(format!(
                "{}: emulator_gap {gap:?} is fixed, remove emulator_gap",
                fixture.name
            )),
            (Ok(problems), Some(gap)) => {
                gaps.push(format!("{}: {gap} ({})", fixture.name, problems.join("; ")));
            }
            (Ok(problems), None) if problems.is_empty() => {}
            (Ok(problems), None) => failures.push(format!(
                "{} ({}): {}",
                fixture.name,
                fixture.doc,
                problems.join("; ")
            )),
            (Err(setup), _) => failures.push(format!("{}: could not run: {setup}", fixture.name)),
        }
    }
    for skip in &skipped {
        eprintln!("emulator skips {skip}");
    }
    for gap in &gaps {
        eprintln!("known emulator gap: {gap}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures disagree with the emulator:\n{}",
        failures.len(),
        fixtures.len() - skipped.len(),
        failures.join("\n")
    );
}
