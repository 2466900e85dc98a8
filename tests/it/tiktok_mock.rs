//! A scripted HTTP server for client tests: each request pops the next scripted answer for its
//! path (or a default), and is recorded with its headers and body size.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One scripted answer.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    /// Hold the answer this long (to provoke client timeouts).
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn ok(data: serde_json::Value) -> Self {
        Self::json(
            200,
            serde_json::json!({"data": data, "error": {"code": "ok", "message": "", "log_id": "LOG"}}),
        )
    }

    pub fn err(status: u16, code: &str) -> Self {
        Self::json(
            status,
            serde_json::json!({"data": {}, "error": {"code": code, "message": "scripted", "log_id": "LOGERR"}}),
        )
    }
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
pub struct Script {
    pub replies: Mutex<HashMap<String, VecDeque<Reply>>>,
    pub defaults: Mutex<HashMap<String, Reply>>,
    pub seen: Mutex<Vec<Seen>>,
}

pub struct Mock {
    pub addr: SocketAddr,
    pub script: Arc<Script>,
}

impl Mock {
    pub async fn start() -> Self {
        let script = Arc::new(Script::default());
        let app = Router::new().fallback(handle).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, script }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers for `path`, in order; after them the default.
    pub fn push(&self, path: &str, reply: Reply) {
        self.script
            .replies
            .lock()
            .expect("lock")
            .entry(path.into())
            .or_default()
            .push_back(reply);
    }

    pub fn default(&self, path: &str, reply: Reply) {
        self.script
            .defaults
            .lock()
            .expect("lock")
            .insert(path.into(), reply);
    }

    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.script
            .seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

async fn handle(
    State(script): State<Arc<Script>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    script.seen.lock().expect("lock").push(Seen {
        method: method.to_string(),
        path: path.clone(),
        headers,
        body,
    });
    let reply = {
        let next = script
            .replies
            .lock()
            .expect("lock")
            .get_mut(&path)
            .and_then(VecDeque::pop_front);
        next.or_else(|| script.defaults.lock().expect("lock").get(&path).cloned())
    };
    let Some(reply) = reply else {
        return (StatusCode::NOT_FOUND, "no script").into_response();
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header"));
    }
    response
}
