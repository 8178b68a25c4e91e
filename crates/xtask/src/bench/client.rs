//! The few HTTP calls the runner makes itself (wrk makes the measured ones): readiness,
//! logins for the tokens, the seeded waiters, order ids, the reports before they are measured,
//! W5's open orders, and whether a build has a route at all.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use uuid::Uuid;

/// An HTTP client on a runtime of its own (the runner is otherwise synchronous).
#[derive(Debug)]
pub struct Api {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Debug, Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Listed {
    id: Uuid,
}

/// A user as `GET /api/v1/users` lists them.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    /// Where they work (absent before locations existed: the `--against` build may be older).
    #[serde(default)]
    pub location_ids: Vec<Uuid>,
}

/// One product of a report.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportLine {
    pub product_name: String,
}

#[derive(Debug, Deserialize)]
struct Report {
    products: Vec<ReportLine>,
}

impl Api {
    pub fn new() -> anyhow::Result<Self> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting a tokio runtime")?;
        // Idle connections are dropped before the server's keep-alive (actix's 5 s) would close
        // them: a request sent on a connection the server is closing fails ("connection closed
        // before message completed"), as the first probe of an idle `--against` build did.
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { runtime, http })
    }

    /// Whether `/health/ready` answers 2xx within 2 s.
    pub fn ready(&self, base: &str) -> bool {
        let request = self.http.get(format!("{base}/health/ready")).timeout(Duration::from_secs(2));
        self.runtime.block_on(async { request.send().await }).is_ok_and(|r| r.status().is_success())
    }

    /// A bearer token for `email`.
    pub fn login(&self, base: &str, email: &str, password: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({ "email": email, "password": password });
        let request = self.http.post(format!("{base}/api/v1/auth/login")).json(&body).timeout(Duration::from_secs(30));
        self.runtime.block_on(async {
            let response = request.send().await.with_context(|| format!("logging {email} in"))?;
            let status = response.status();
            if !status.is_success() {
                bail!("logging {email} in: {status}");
            }
            Ok(response.json::<Token>().await.context("the login's answer")?.access_token)
        })
    }

    /// `GET path` as `token`; the body of a 2xx answer.
    pub fn get(&self, base: &str, path: &str, token: &str, timeout_secs: u64) -> anyhow::Result<String> {
        let request =
            self.http.get(format!("{base}{path}")).bearer_auth(token).timeout(Duration::from_secs(timeout_secs));
        self.runtime.block_on(async {
            let response = request.send().await.with_context(|| format!("GET {path}"))?;
            let status = response.status();
            let text = response.text().await.with_context(|| format!("GET {path}"))?;
            if !status.is_success() {
                bail!("GET {path}: {status}: {text}");
            }
            Ok(text)
        })
    }

    /// `POST path` with a JSON body as `token`: the status and the body, whatever the status.
    pub fn post(&self, base: &str, path: &str, token: &str, body: &serde_json::Value) -> anyhow::Result<(u16, String)> {
        let request =
            self.http.post(format!("{base}{path}")).bearer_auth(token).json(body).timeout(Duration::from_secs(30));
        self.runtime.block_on(async {
            let response = request.send().await.with_context(|| format!("POST {path}"))?;
            let status = response.status().as_u16();
            Ok((status, response.text().await.with_context(|| format!("POST {path}"))?))
        })
    }

    /// The status of `GET path` as `token`, read as soon as the headers are in (the body, a
    /// stream maybe, is dropped unread). A failure to send is tried once more, on a new
    /// connection.
    pub fn status(&self, base: &str, path: &str, token: &str) -> anyhow::Result<u16> {
        let request = || self.http.get(format!("{base}{path}")).bearer_auth(token).timeout(Duration::from_secs(10));
        self.runtime.block_on(async {
            let answer = match request().send().await {
                Ok(answer) => answer,
                Err(_) => request().send().await.with_context(|| format!("GET {path}"))?,
            };
            Ok(answer.status().as_u16())
        })
    }

    /// `count` orders made with `POST /api/v1/orders`, 16 requests at a time: the `i`-th by
    /// `tokens[i % tokens.len()]` with the body `body(i)`. Returns each one's id and the index
    /// of its waiter's token, in that order; anything but a 201 is an error.
    pub fn create_orders(
        &self,
        base: &str,
        tokens: &[String],
        count: usize,
        body: impl Fn(usize) -> serde_json::Value,
    ) -> anyhow::Result<Vec<(Uuid, usize)>> {
        if tokens.is_empty() {
            bail!("no tokens to create orders with");
        }
        let url = format!("{base}/api/v1/orders");
        self.runtime.block_on(async {
            let mut made = vec![None; count];
            let mut running = tokio::task::JoinSet::new();
            let mut next = 0;
            loop {
                while running.len() < 16 && next < count {
                    let (i, t) = (next, next % tokens.len());
                    let request =
                        self.http.post(&url).bearer_auth(&tokens[t]).json(&body(i)).timeout(Duration::from_secs(30));
                    running.spawn(async move {
                        let response = request.send().await?;
                        let status = response.status();
                        Ok::<_, reqwest::Error>((i, t, status, response.text().await?))
                    });
                    next += 1;
                }
                let Some(done) = running.join_next().await else { break };
                let (i, t, status, text) = done.context("an order request panicked")?.context("POST /api/v1/orders")?;
                if status.as_u16() != 201 {
                    bail!("POST /api/v1/orders: {status}: {text}");
                }
                let order: Listed = serde_json::from_str(&text).context("the created order")?;
                made[i] = Some((order.id, t));
            }
            Ok(made.into_iter().flatten().collect())
        })
    }

    /// Every page of a list (at most `max_pages` of 100).
    fn pages<T: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        token: &str,
        max_pages: usize,
    ) -> anyhow::Result<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let page_path = match &cursor {
                Some(c) => format!("{path}?limit=100&cursor={c}"),
                None => format!("{path}?limit=100"),
            };
            let page: Page<T> = serde_json::from_str(&self.get(base, &page_path, token, 30)?)
                .with_context(|| format!("the page of GET {page_path}"))?;
            out.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    /// The users the admin sees (every page).
    pub fn users(&self, base: &str, admin_token: &str) -> anyhow::Result<Vec<User>> {
        self.pages(base, "/api/v1/users", admin_token, 10_000)
    }

    /// Up to 1000 order ids, newest first (`GET /api/v1/orders?limit=100`, 10 pages).
    pub fn order_ids(&self, base: &str, token: &str) -> anyhow::Result<Vec<Uuid>> {
        Ok(self.pages::<Listed>(base, "/api/v1/orders", token, 10)?.into_iter().map(|o| o.id).collect())
    }

    /// The products of a report's answer, in its order (most sold first).
    pub fn report_products(body: &str) -> anyhow::Result<Vec<ReportLine>> {
        Ok(serde_json::from_str::<Report>(body).context("the report's answer")?.products)
    }
}
