//! A real HTTP receiver on loopback for webhook and inbound-route tests,
//! and the Standard Webhooks reference library (Python) that verifies what
//! it got.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::json;

/// A request a receiver got: its headers and body.
pub type Received = (HashMap<String, String>, String);

/// An HTTP receiver on loopback: records each request, answers with the
/// scripted statuses in turn (then 200).
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(script: &[u16]) -> Receiver {
        Receiver::start_slow(script, std::time::Duration::ZERO).await
    }

    /// On a chosen port of 127.0.0.1.
    pub async fn start_on(port: u16, script: &[u16]) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        Receiver::serve(listener, script, std::time::Duration::ZERO)
    }

    /// Takes `delay` to answer each request.
    pub async fn start_slow(script: &[u16], delay: std::time::Duration) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, script, delay)
    }

    fn serve(listener: tokio::net::TcpListener, script: &[u16], delay: std::time::Duration) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<u16>>()));
        let (log, answers) = (got.clone(), script.clone());
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                    let (log, answers) = (log.clone(), answers.clone());
                    async move {
                        let headers = headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                            .collect();
                        log.lock().unwrap().push((headers, body));
                        tokio::time::sleep(delay).await;
                        let status = answers.lock().unwrap().pop_front().unwrap_or(200);
                        axum::http::StatusCode::from_u16(status).unwrap()
                    }
                }),
            )
            // Inbound payloads carry whole messages.
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Whether the reference library verifies `body` with `headers` under `secret`.
pub fn verifies(secret: &str, headers: &HashMap<String, String>, body: &str) -> bool {
    let wanted = ["webhook-id", "webhook-timestamp", "webhook-signature"];
    let headers: HashMap<&str, &str> = wanted
        .iter()
        .map(|k| (*k, headers.get(*k).map(String::as_str).unwrap_or_default()))
        .collect();
    let mut child = std::process::Command::new(crate::helpers::python())
        .args(["tests/support/verify_webhook.py", secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("python with standardwebhooks (scripts/test installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!({"body": body, "headers": headers}).to_string().as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}
