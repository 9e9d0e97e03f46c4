//! A local HTTP endpoint that plays the applications' side of single logout: it records every
//! request and answers as the test says (a status, or never).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::sync::mpsc;

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Behaviour {
    /// With this status.
    Answer(u16),
    /// Not at all: the request hangs until the sender gives up.
    Hang,
}

/// One request it got.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) uri: String,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

impl Received {
    /// The `LogoutRequest` XML; asserts it is the body's first and only field.
    pub(crate) fn logout_request(&self) -> String {
        assert!(self.body.starts_with("logoutRequest="), "{}", self.body);
        let fields: Vec<(String, String)> = form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(fields.len(), 1, "{fields:?}");
        fields[0].1.clone()
    }

    /// The `SessionIndex` of the request.
    pub(crate) fn session_index(&self) -> String {
        between(
            &self.logout_request(),
            "<samlp:SessionIndex>",
            "</samlp:SessionIndex>",
        )
    }
}

/// The text between `start` and `end` in `s`.
pub(crate) fn between(s: &str, start: &str, end: &str) -> String {
    let from = s.find(start).unwrap_or_else(|| panic!("no {start} in {s}")) + start.len();
    s[from..from + s[from..].find(end).unwrap()].to_owned()
}

/// The receiver.
pub(crate) struct Receiver {
    /// `http://127.0.0.1:PORT`
    pub(crate) url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    received: tokio::sync::Mutex<mpsc::UnboundedReceiver<Received>>,
}

impl Receiver {
    /// Listens on a free port, answering 200.
    pub(crate) async fn start() -> Self {
        let behaviour = Arc::new(Mutex::new(Behaviour::Answer(200)));
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = behaviour.clone();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (tx, shared) = (tx.clone(), shared.clone());
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let received = Received {
                        method: method.to_string(),
                        uri: uri.to_string(),
                        content_type,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    let _ = tx.send(received);
                    let behaviour = *shared.lock().unwrap();
                    match behaviour {
                        Behaviour::Answer(code) => StatusCode::from_u16(code).unwrap(),
                        Behaviour::Hang => std::future::pending().await,
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            behaviour,
            received: tokio::sync::Mutex::new(rx),
        }
    }

    /// Changes how it answers from now on.
    pub(crate) fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// The next request; fails the test if none comes within 20 s.
    pub(crate) async fn next(&self) -> Received {
        let mut rx = self.received.lock().await;
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a request reached the receiver")
            .expect("the receiver runs")
    }

    /// Requests that arrived and were not yet taken with `next`.
    pub(crate) async fn pending(&self) -> Vec<Received> {
        let mut rx = self.received.lock().await;
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }
}

/// Waits (a bounded time, polling) until `check` holds; fails the test otherwise.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}
