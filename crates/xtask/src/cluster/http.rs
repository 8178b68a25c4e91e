//! HTTP as the checks' clients speak it: one request per connection (`Connection: close`), from
//! a chosen loopback source address. Every 127.x.y.z address is this machine, and the server sees
//! it as the client's address, so each address is another client to the rate limits, and none
//! but 127.0.0.1 (nginx) is a trusted proxy.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// `127.a.b.c`.
pub fn lo(a: u8, b: u8, c: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, a, b, c)
}

/// The clients, one per source address (kept: building one is not free).
#[derive(Debug, Clone, Default)]
pub struct Http {
    clients: Arc<Mutex<HashMap<Ipv4Addr, reqwest::Client>>>,
}

impl Http {
    pub fn get(&self, port: u16, path: &str) -> Call {
        self.call(Method::GET, port, path)
    }

    pub fn post(&self, port: u16, path: &str) -> Call {
        self.call(Method::POST, port, path)
    }

    fn call(&self, method: Method, port: u16, path: &str) -> Call {
        Call {
            http: self.clone(),
            method,
            url: format!("http://127.0.0.1:{port}{path}"),
            source: lo(0, 0, 1),
            headers: HeaderMap::new(),
            body: None,
            timeout: Duration::from_secs(10),
        }
    }

    fn client(&self, source: Ipv4Addr) -> Result<reqwest::Client> {
        let mut clients = self.clients.lock().map_err(|_| anyhow!("the HTTP clients' lock is poisoned"))?;
        if let Some(client) = clients.get(&source) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            // Loopback only: no proxy from the environment may come between.
            .no_proxy()
            .local_address(IpAddr::V4(source))
            .pool_max_idle_per_host(0)
            .http1_only()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("building an HTTP client")?;
        clients.insert(source, client.clone());
        Ok(client)
    }
}

/// One request being put together.
#[derive(Debug)]
pub struct Call {
    http: Http,
    method: Method,
    url: String,
    source: Ipv4Addr,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Duration,
}

impl Call {
    /// The source address (default 127.0.0.1).
    pub fn from(mut self, source: Ipv4Addr) -> Self {
        self.source = source;
        self
    }

    /// Adds a header; several of one name are allowed on purpose (two X-Forwarded-For, say).
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.append(HeaderName::from_static(name), value);
        }
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends it on a fresh connection and reads the whole answer. An error is a failure of the
    /// connection (refused, reset, timed out), never an HTTP status.
    pub async fn send(self) -> Result<Response, Failure> {
        let client = self.http.client(self.source).map_err(|e| Failure::Setup(format!("{e:#}")))?;
        let mut headers = self.headers;
        headers.insert(reqwest::header::CONNECTION, HeaderValue::from_static("close"));
        if self.body.is_some() && !headers.contains_key(reqwest::header::CONTENT_TYPE) {
            headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let mut request = client.request(self.method, &self.url).headers(headers).timeout(self.timeout);
        if let Some(body) = self.body {
            request = request.body(body);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(Failure::from)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(Failure::from)?.to_vec();
        Ok(Response { status, headers, body, elapsed: started.elapsed() })
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Could not connect.
    Connect,
    /// No (whole) answer in time.
    Timeout,
    /// The connection broke (reset, closed early) or another transport error.
    Transport(String),
    /// The harness could not build the client.
    Setup(String),
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Connect
        } else {
            Self::Transport(e.without_url().to_string())
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::Timeout => f.write_str("timeout"),
            Self::Transport(_) => f.write_str("disconnected"),
            Self::Setup(detail) => write!(f, "setup: {detail}"),
        }
    }
}

impl std::error::Error for Failure {}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The header or "-".
    pub fn header_or_dash(&self, name: &str) -> String {
        self.header(name).unwrap_or("-").to_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("a {} answer is not JSON: {}", self.status, self.body_text(200)))
    }

    /// The start of the body, as text.
    pub fn body_text(&self, max: usize) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(max)]).into_owned()
    }

    pub fn millis(&self) -> u128 {
        self.elapsed.as_millis()
    }
}

/// Whether `GET /health/ready` on `port` answers 200 within 2 s.
pub async fn ready(http: &Http, port: u16) -> bool {
    http.get(port, "/health/ready").timeout(Duration::from_secs(2)).send().await.is_ok_and(|r| r.status == 200)
}
