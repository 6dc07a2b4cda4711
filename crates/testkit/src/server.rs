//! A real server of ours, running in this process on a free port of
//! 127.0.0.1 until stopped, with [`Faults`] in front of it: the harness can
//! slow an endpoint down, make it fail, and count its requests, while the
//! server behind it stays the real one.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tokio::{sync::oneshot, task::JoinHandle};

/// A server running in this process until dropped or stopped.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // The peer's address reaches the handlers, as in the binaries.
            let app = router.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Running {
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A listener on a free port of 127.0.0.1.
pub async fn listen() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// What the harness does to requests whose path ends with a given suffix.
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<FaultState>>);

#[derive(Default)]
struct FaultState {
    delays: HashMap<String, Duration>,
    failures: HashMap<String, u16>,
    counts: HashMap<String, usize>,
    /// Every token a `/v1/token` answer carried, as the client got it.
    issued: Vec<String>,
    /// The bodies of the requests to `/v1/token`, as the client sent them.
    token_requests: Vec<String>,
    /// Changes made to every successful `/v1/token` answer on its way out:
    /// a provider (or anyone between it and the client) that misbehaves.
    tamper: Option<Tamper>,
}

type Tamper = Arc<dyn Fn(&mut serde_json::Value) + Send + Sync>;

impl Faults {
    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests to `suffix` wait `delay` before they reach the server.
    pub fn delay(&self, suffix: &str, delay: Duration) {
        self.state().delays.insert(suffix.to_owned(), delay);
    }

    /// Requests to `suffix` get `status` (and a JSON error) instead of the
    /// server's answer.
    pub fn fail(&self, suffix: &str, status: u16) {
        self.state().failures.insert(suffix.to_owned(), status);
    }

    /// The form bodies the token endpoint received, in order: what a client
    /// sent (its verifier, its code), for a test to compare with what it
    /// shows.
    pub fn token_requests(&self) -> Vec<String> {
        self.state().token_requests.clone()
    }

    /// Successful token responses pass through `change` first.
    pub fn tamper_token_responses(
        &self,
        change: impl Fn(&mut serde_json::Value) + Send + Sync + 'static,
    ) {
        self.state().tamper = Some(Arc::new(change));
    }

    /// Back to normal.
    pub fn clear(&self) {
        let mut state = self.state();
        state.delays.clear();
        state.failures.clear();
        state.tamper = None;
    }

    /// How many requests to `suffix` arrived (failed ones included).
    pub fn count(&self, suffix: &str) -> usize {
        self.state()
            .counts
            .iter()
            .filter(|(path, _)| path.ends_with(suffix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Waits (up to ten seconds) until `n` requests to `suffix` have
    /// arrived: a request in flight has passed everything before this
    /// server, and is now inside it.
    pub async fn arrived(&self, suffix: &str, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.count(suffix) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "no request to {suffix} arrived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The tokens the server's token endpoint has handed out so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state().issued.clone()
    }

    /// `router` with these faults in front of it.
    pub fn around(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), apply))
    }
}

/// The value whose key `path` ends with.
fn matching<T: Copy>(map: &HashMap<String, T>, path: &str) -> Option<T> {
    map.iter()
        .find(|(suffix, _)| path.ends_with(suffix.as_str()))
        .map(|(_, v)| *v)
}

async fn apply(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let (delay, failure) = {
        let mut state = faults.state();
        *state.counts.entry(path.clone()).or_default() += 1;
        (
            matching(&state.delays, &path),
            matching(&state.failures, &path),
        )
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let body = r#"{"error":"temporarily_unavailable"}"#;
        return (status, [("content-type", "application/json")], body).into_response();
    }
    let request = if path.ends_with("/v1/token") {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        faults.state().token_requests.push(text);
        Request::from_parts(parts, Body::from(bytes))
    } else {
        request
    };
    let response = next.run(request).await;
    if !(path.ends_with("/v1/token") && response.status() == StatusCode::OK) {
        return response;
    }
    // Note what the token endpoint handed out (changed, if a test says so).
    let (mut parts, body) = response.into_parts();
    let mut bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        let mut state = faults.state();
        if let Some(tamper) = &state.tamper {
            tamper(&mut json);
            bytes = serde_json::to_vec(&json).unwrap_or_default().into();
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        }
        for name in ["access_token", "refresh_token", "id_token"] {
            if let Some(token) = json[name].as_str() {
                state.issued.push(token.to_owned());
            }
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}
