//! Test harness: each test gets its own PostgreSQL database and a Tern API
//! on an ephemeral port; real HTTP with reqwest.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tern::config::Settings;
use tern::startup::{Application, connect_and_migrate};
use tern::state::AppState;
use uuid::Uuid;

/// Server of the test databases; `TERN_TEST_DATABASE_URL` overrides.
pub fn admin_url() -> String {
    std::env::var("TERN_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A running Tern with its own database, dropped with the value.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: PgPool,
    pub db_name: String,
    pub client: Client,
    pub settings: Settings,
}

/// Starts Tern with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts Tern after letting the test adjust the settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let db_name = format!("tern_test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{}/postgres", admin_url()))
        .await
        .expect("PostgreSQL must be running (scripts/test starts it)");
    admin
        .execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{db_name}""#)))
        .await
        .expect("create test database");
    let mut settings = Settings::default();
    settings.database.url = format!("{}/{db_name}", admin_url()).into();
    settings.database.max_connections = 5;
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    settings.public_hostname = "tern.test".into();
    settings.dns.nameservers = vec!["127.0.0.1:9".parse().unwrap()];
    settings.dns.timeout_ms = 500;
    // Tests deliver to sinks on loopback found through dnsmasq, and to
    // `.test` domains; tests/api/hardening.rs turns this off again.
    settings.delivery.allow_private_destinations = true;
    // Tests send in bursts; tests/api/hardening.rs checks the limits.
    settings.limits.sends_per_second_per_key = 0;
    settings.limits.concurrent_sends_per_key = 0;
    settings.secrets.key = Some(test_secrets_key().into());
    // Webhook receivers in tests listen on loopback over plain HTTP;
    // tests/api/webhooks.rs turns the guard on again.
    settings.webhooks.allow_private_targets = true;
    settings.webhooks.allow_http = true;
    adjust(&mut settings);
    let pool = connect_and_migrate(&settings).await.expect("migrate");
    let state = AppState::new(pool.clone(), settings.clone())
        .await
        .expect("state");
    let app = Application::build(state).await.expect("bind");
    let addr = app.local_addr().unwrap();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        addr,
        db: pool,
        db_name,
        client: Client::new(),
        settings,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Drop the database from a fresh runtime: Drop cannot await. FORCE
        // ends the pool's connections, which live on the test's runtime.
        let name = self.db_name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&format!("{}/postgres", admin_url())).await {
                    let _ = admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

/// What a test tenant consists of.
pub struct Tenant {
    pub token: String,
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub server_id: Uuid,
    pub domain_id: Uuid,
    pub domain: String,
    pub key: String,
    pub key_id: Uuid,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Creates an admin user and logs in through the API.
    pub async fn user(&self, email: &str) -> (Uuid, String) {
        let (user, _) = tern::bootstrap::create_admin(&self.db, email, "", Some("a long password".into()))
            .await
            .expect("create user");
        let response = self
            .client
            .post(self.url("/v1/auth/login"))
            .json(&json!({"email": email, "password": "a long password"}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        (user.id, body["token"].as_str().unwrap().to_string())
    }

    /// A user with an organization, a server in `mode`, a domain and a key.
    pub async fn tenant(&self, email: &str, domain: &str, mode: &str, algorithm: &str) -> Tenant {
        let (user_id, token) = self.user(email).await;
        let org = json_of(
            self.post("/v1/organizations", &token, &json!({"name": "Org"}))
                .await,
            201,
        )
        .await;
        let org_id = id_of(&org);
        let server = json_of(
            self.post(
                &format!("/v1/organizations/{org_id}/servers"),
                &token,
                &json!({"name": "Server", "mode": mode}),
            )
            .await,
            201,
        )
        .await;
        let server_id = id_of(&server);
        let created = json_of(
            self.post(
                &format!("/v1/servers/{server_id}/domains"),
                &token,
                &json!({"name": domain, "dkim_algorithm": algorithm}),
            )
            .await,
            201,
        )
        .await;
        let key = json_of(
            self.post(
                &format!("/v1/servers/{server_id}/api-keys"),
                &token,
                &json!({"name": "test"}),
            )
            .await,
            201,
        )
        .await;
        Tenant {
            token,
            user_id,
            org_id,
            server_id,
            domain_id: id_of(&created),
            domain: domain.to_string(),
            key: key["secret"].as_str().unwrap().to_string(),
            key_id: id_of(&key),
        }
    }

    /// A tenant on a `live` server whose domain is marked verified (as if
    /// its DNS records had been checked), ready to deliver.
    pub async fn live_tenant(&self, email: &str, domain: &str) -> Tenant {
        let tenant = self.tenant(email, domain, "live", "ed25519").await;
        sqlx::query("UPDATE domains SET verified_at = now() WHERE id = $1")
            .bind(tenant.domain_id)
            .execute(&self.db)
            .await
            .unwrap();
        tenant
    }

    /// Rows in `table`, to prove that a refused request wrote nothing.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// `POST /v1/messages`, which must answer 202; returns the body.
    pub async fn send(&self, key: &str, body: &Value) -> Value {
        json_of(self.post("/v1/messages", key, body).await, 202).await
    }

    /// `GET /v1/messages/{id}` of a send response (or anything with an `id`).
    pub async fn message(&self, key: &str, sent: &Value) -> Value {
        let id = sent["id"].as_str().expect("id in body");
        json_of(self.get(&format!("/v1/messages/{id}"), key).await, 200).await
    }

    /// The stored source of a message, through the API.
    pub async fn source(&self, key: &str, id: &str) -> Vec<u8> {
        let response = self.get(&format!("/v1/messages/{id}/source"), key).await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap().to_vec()
    }
}

/// Asserts the status and returns the JSON body.
pub async fn json_of(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(actual, status, "unexpected status; body: {body}");
    body
}

/// Asserts an error response's status and code.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    let body = json_of(response, status).await;
    assert_eq!(body["error"]["code"], code, "body: {body}");
    body
}

pub fn id_of(body: &Value) -> Uuid {
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id in body")
}

/// The Python with the test peers' packages (scripts/test sets it).
pub fn python() -> String {
    std::env::var("TERN_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Checks bodies against the committed OpenAPI document's component
/// schemas with an independent JSON Schema validator (Python jsonschema).
/// `cases`: `{"schema": name, "body": ..., "valid": bool}`; the error lists
/// the cases that came out otherwise.
pub fn schema_check(cases: &[Value]) -> Result<(), String> {
    use std::io::Write;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let mut child = Command::new(python())
        .args(["tests/support/schema_check.py", path])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python (scripts/test installs jsonschema with openapi-spec-validator)");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(serde_json::to_string(cases).expect("JSON").as_bytes())
        .expect("writing the cases");
    let out = child.wait_with_output().expect("schema_check.py ran");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// dnsmasq answering only from its command line; killed on drop.
pub struct Dnsmasq(Child);

impl Dnsmasq {
    /// Serves `records` (dnsmasq flags) on 127.0.0.1:`port`; other names are NXDOMAIN.
    ///
    /// The port was free when it was reserved, but the suite's resolvers
    /// pick their query sockets' ports at random over the whole range, so
    /// one may hold it for a moment: dnsmasq then cannot listen and exits,
    /// and is started again until it answers.
    pub fn start(port: u16, records: &[String]) -> Dnsmasq {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new("dnsmasq")
                .args([
                    "-k",
                    "-C",
                    "/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                ])
                .args([
                    "--listen-address=127.0.0.1",
                    "--user=nobody",
                    "--pid-file=",
                    "--address=/#/",
                ])
                .arg(format!("--port={port}"))
                .args(records)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dnsmasq (scripts/test installs dnsmasq-base)");
            // Ready once it answers a query (a fixed wait was too short for
            // a loaded machine: the first query of a test went unanswered).
            loop {
                if dns_answers(port) {
                    return Dnsmasq(child);
                }
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("dnsmasq did not answer on 127.0.0.1:{port}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dnsmasq could not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether a DNS server on 127.0.0.1:`port` answers a query (for the
/// root's A record: any answer will do).
fn dns_answers(port: u16) -> bool {
    let Ok(socket) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    // Header (id, flags RD, one question), then `.` IN A.
    let query = [0x7e, 0x57, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
    let mut answer = [0u8; 512];
    socket.send_to(&query, ("127.0.0.1", port)).is_ok() && socket.recv(&mut answer).is_ok()
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The recipient with `address` in a message's JSON.
pub fn recipient<'a>(message: &'a Value, address: &str) -> &'a Value {
    message["recipients"]
        .as_array()
        .and_then(|list| list.iter().find(|r| r["address"] == address))
        .unwrap_or_else(|| panic!("no recipient {address} in {message}"))
}

/// A transport rule sending `domain`'s mail to a peer on 127.0.0.1:`port`.
pub fn loopback_route(domain: &str, port: u16) -> tern::config::TransportRule {
    tls_route(domain, port, tern::config::TlsPolicy::Opportunistic)
}

/// A route to a sink on 127.0.0.1 with the given STARTTLS policy.
pub fn tls_route(domain: &str, port: u16, tls: tern::config::TlsPolicy) -> tern::config::TransportRule {
    tern::config::TransportRule {
        domain: domain.into(),
        host: "127.0.0.1".into(),
        port: Some(port),
        tls,
        ca_file: None,
        require_tls: false,
    }
}

/// A fresh sealing key (`secrets.key`), so that tests write no key file.
pub fn test_secrets_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

/// A port on 127.0.0.1, free now for both UDP and TCP, for a peer to
/// listen on (dnsmasq listens on both).
///
/// It lies outside the kernel's ephemeral range, so no outgoing connection
/// (a pool's link to PostgreSQL, an HTTP client) and no `bind(:0)` can take
/// it in the meantime and hold it for the rest of the run: that made
/// dnsmasq fail to listen for good. Never the same port twice in one run.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = outside_ephemeral_range();
    let span = u32::from(high - low) + 1;
    // Start at a random place so that separate runs spread out.
    let _ = NEXT.compare_exchange(
        0,
        rand::random_range(1..=span),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let port = low + u16::try_from(offset).expect("offset below span");
        let free = std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free port in {low}..={high}");
}

/// The unprivileged ports below (or, failing room there, above) the
/// kernel's ephemeral range.
fn outside_ephemeral_range() -> (u16, u16) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = range.split_whitespace().filter_map(|n| n.parse::<u16>().ok());
    let (first, last) = (bounds.next().unwrap_or(32768), bounds.next().unwrap_or(60999));
    if first > 11_024 {
        (10_000, first - 1)
    } else if last < 64_535 {
        (last + 1, 65_535)
    } else {
        (1024, 65_535)
    }
}
