//! W6: the kitchen stream's fan-out. Displays (`GET /api/v1/kitchen/stream`, 1000 connections
//! from this process, on one location) stay open while a paced sender makes tickets for that
//! location (`POST /api/v1/orders` with `"send": true`, evenly spaced, as the location's
//! waiters). Every event a display receives is timed when its bytes arrive; its latency is
//! that time minus the ticket's `created_at`, which the service sets just before the ticket's
//! transaction (the same machine's clock). Every display must receive every `ticket.created`
//! event of the run once, in id order, on the connection it opened (no reconnection).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::baselines::percentiles;
use super::supervise::Supervisor;
use super::wrk::Measure;

/// Displays connecting at once (the rest wait for one of them to get its first frame).
const CONNECTING: usize = 64;
/// How long the displays may take to open, all together.
const OPEN_WITHIN: Duration = Duration::from_secs(60);
/// How long the displays may take to receive the last event once the sender is done.
const DRAIN_WITHIN: Duration = Duration::from_secs(10);
/// Threads (each a runtime of its own) the displays are spread over.
const DISPLAY_THREADS: usize = 2;
/// Sender requests in flight at most (a slower server makes the sender fall behind its pace).
const SENDER_IN_FLIGHT: usize = 256;

/// One run of W6.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: String,
    pub location: String,
    /// The displays' token (the admin's: an admin may follow every location).
    pub display_token: String,
    /// The sender's tokens: the location's waiters, round-robin.
    pub waiter_tokens: Vec<String>,
    /// Product names for the tickets' lines.
    pub products: Vec<String>,
    pub displays: usize,
    pub per_sec: u64,
    pub lines: usize,
    pub warmup: u64,
    pub duration: u64,
}

impl Plan {
    /// The stream's path and query.
    pub fn stream_path(&self) -> String {
        format!("/api/v1/kitchen/stream?location_id={}", self.location)
    }

    /// The body of the `k`-th ticket's order: `lines` distinct products, two-decimal prices.
    fn body(&self, k: u64) -> serde_json::Value {
        let n = self.products.len().max(1);
        let items: Vec<serde_json::Value> = (0..self.lines as u64)
            .map(|j| {
                let cents = 120 + (k * 37 + j * 101) % 3380;
                serde_json::json!({
                    "product_name": self.products[((k as usize) * self.lines + j as usize) % n],
                    "unit_price": format!("{}.{:02}", cents / 100, cents % 100),
                    "quantity": 1 + (k + j) % 3,
                })
            })
            .collect();
        serde_json::json!({
            "customer_name": format!("Table {}", k % 60 + 1),
            "location_id": self.location,
            "send": true,
            "items": items,
        })
    }
}

/// The location most of the waiters work in (the first such in their order), and those
/// waiters' tokens: `locations[i]` is the location of the waiter whose token is `tokens[i]`.
pub fn busiest_location(locations: &[String], tokens: &[String]) -> Option<(String, Vec<String>)> {
    let mut best: Option<(&String, usize)> = None;
    for location in locations.iter().filter(|l| !l.is_empty()) {
        let n = locations.iter().filter(|l| *l == location).count();
        if best.is_none_or(|(_, most)| n > most) {
            best = Some((location, n));
        }
    }
    let (location, _) = best?;
    let mine = locations.iter().zip(tokens).filter(|(l, _)| *l == location).map(|(_, t)| t.clone()).collect();
    Some((location.clone(), mine))
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// What the displays share with the runner while they run.
struct Shared {
    /// Tickets created from this instant on (µs since the epoch) are in the latencies: the
    /// measured part of the run.
    measured_from_us: AtomicI64,
    /// Displays that got their first frame, and those that failed before it.
    opened: AtomicUsize,
    failed: AtomicUsize,
    /// Each display's highest event id so far (its opening id at first; -1 before).
    last: Vec<AtomicI64>,
}

/// One display's record.
#[derive(Debug, Default)]
struct Display {
    /// The id of the opening frame (the location's last event when the stream opened).
    opening: Option<i64>,
    /// The highest event id received.
    max: i64,
    /// Which ids after the opening one arrived (bit `id - opening - 1`).
    seen: Vec<u64>,
    /// `ticket.created` frames, the distinct ones among them, those received twice, those
    /// after a higher id, those at or before the opening id.
    received: u64,
    distinct: u64,
    duplicates: u64,
    out_of_order: u64,
    before: u64,
    /// Other events (`ticket.updated`), comment lines, frames it could not read.
    other_events: u64,
    comments: u64,
    malformed: u64,
    /// Delivery latencies of the measured part, µs.
    latencies: Vec<u32>,
    /// Why it could not open, or why its stream ended before the run did.
    failure: Option<String>,
    dropped: Option<String>,
}

/// The microseconds since the epoch of a ticket's `created_at` (RFC 3339) in its JSON (sought
/// from the end, where it is).
fn created_at_us(data: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"created_at\":\"";
    let start = data.windows(KEY.len()).rposition(|w| w == KEY)? + KEY.len();
    let len = data[start..].iter().position(|&b| b == b'"')?;
    let text = std::str::from_utf8(&data[start..start + len]).ok()?;
    Some(chrono::DateTime::parse_from_rfc3339(text).ok()?.timestamp_micros())
}

/// The fields of one frame, as its lines give them.
#[derive(Debug, Default)]
struct Frame<'a> {
    id: Option<i64>,
    kind: Option<&'a [u8]>,
    data: Option<&'a [u8]>,
    comments: u64,
}

impl<'a> Frame<'a> {
    fn line(&mut self, line: &'a [u8]) {
        if let Some(v) = line.strip_prefix(b"id:") {
            self.id = std::str::from_utf8(v.trim_ascii()).ok().and_then(|v| v.parse().ok());
        } else if let Some(v) = line.strip_prefix(b"event:") {
            self.kind = Some(v.trim_ascii());
        } else if let Some(v) = line.strip_prefix(b"data:") {
            self.data = Some(v);
        } else if line.first() == Some(&b':') {
            self.comments += 1;
        }
    }
}

impl Display {
    fn frame(&mut self, frame: &Frame, now: i64, shared: &Shared, index: usize) {
        self.comments += frame.comments;
        match (frame.kind, frame.id) {
            (None, Some(id)) if self.opening.is_none() => {
                self.opening = Some(id);
                self.max = id;
                shared.last[index].store(id, Ordering::Relaxed);
            }
            (Some(b"ticket.created"), Some(id)) => self.created(id, frame.data, now, shared, index),
            (Some(_), _) => self.other_events += 1,
            (None, Some(_)) => self.malformed += 1,
            (None, None) => {}
        }
    }

    fn created(&mut self, id: i64, data: Option<&[u8]>, now: i64, shared: &Shared, index: usize) {
        self.received += 1;
        let Some(opening) = self.opening else {
            self.malformed += 1;
            return;
        };
        if id <= opening {
            self.before += 1;
            return;
        }
        let offset = (id - opening - 1) as usize;
        let (word, bit) = (offset / 64, offset % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.distinct += 1;
        if id < self.max {
            self.out_of_order += 1;
        } else {
            self.max = id;
            shared.last[index].store(id, Ordering::Relaxed);
        }
        match data.and_then(created_at_us) {
            Some(created) if created >= shared.measured_from_us.load(Ordering::Relaxed) => {
                self.latencies.push((now - created).clamp(0, i64::from(u32::MAX)) as u32);
            }
            Some(_) => {}
            None => self.malformed += 1,
        }
    }
}

/// The answer's body: HTTP/1.1 chunks (actix streams so), or the bytes as they come.
#[derive(Debug)]
enum Body {
    Chunked(Dechunk),
    Plain,
}

/// An incremental decoder of `Transfer-Encoding: chunked`.
#[derive(Debug, Default)]
struct Dechunk {
    raw: Vec<u8>,
    state: ChunkState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk's size line.
    #[default]
    Size,
    /// This many bytes of the chunk's data are still to come.
    Data(usize),
    /// The CRLF after a chunk's data.
    End,
    /// The last chunk (size 0) came: the body is over.
    Done,
}

/// Where `byte` first is in `haystack`, looked for 8 bytes at a time.
fn find_byte(haystack: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(byte);
    let mut at = 0;
    while let Some(word) = haystack[at..].first_chunk::<8>() {
        let x = u64::from_le_bytes(*word) ^ pattern;
        // A zero byte in x: this word holds `byte`.
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            break;
        }
        at += 8;
    }
    haystack[at..].iter().position(|&b| b == byte).map(|p| at + p)
}

/// Where `needle` starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(at) = find_byte(&haystack[from..], first) {
        let at = from + at;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

impl Dechunk {
    /// Decodes `input` onto `out`; true once the last chunk came.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
        self.raw.extend_from_slice(input);
        let mut at = 0;
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(end) = find(&self.raw[at..], b"\r\n") else { break };
                    let line = &self.raw[at..at + end];
                    let hex = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
                        .ok_or_else(|| format!("a chunk size that is not one: {:?}", String::from_utf8_lossy(line)))?;
                    at += end + 2;
                    self.state = if size == 0 { ChunkState::Done } else { ChunkState::Data(size) };
                }
                ChunkState::Data(left) => {
                    let take = left.min(self.raw.len() - at);
                    if take == 0 {
                        break;
                    }
                    out.extend_from_slice(&self.raw[at..at + take]);
                    at += take;
                    self.state = if take == left { ChunkState::End } else { ChunkState::Data(left - take) };
                }
                ChunkState::End => {
                    if self.raw.len() - at < 2 {
                        break;
                    }
                    if &self.raw[at..at + 2] != b"\r\n" {
                        return Err("a chunk that does not end with CRLF".to_owned());
                    }
                    at += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Done => break,
            }
        }
        self.raw.drain(..at);
        Ok(self.state == ChunkState::Done)
    }
}

/// Connects to `addr`, sends `request`, reads the answer's head: the connection, its body's
/// decoder and the body's first bytes; or why not (anything but a 200 is a failure).
async fn open(addr: &str, request: &[u8]) -> Result<(TcpStream, Body, Vec<u8>), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
    stream.write_all(request).await.map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection before answering".to_owned());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&head, b"\r\n\r\n") {
            break end;
        }
        if head.len() > 64 * 1024 {
            return Err("an answer head of more than 64 KiB".to_owned());
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let status = text.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status}"));
    }
    let chunked = text.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { Body::Chunked(Dechunk::default()) } else { Body::Plain };
    Ok((stream, body, head[end + 4..].to_vec()))
}

/// The body bytes of `input` onto `out`; true once the body is over.
fn decode(body: &mut Body, input: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
    match body {
        Body::Chunked(dechunk) => dechunk.feed(input, out),
        Body::Plain => {
            out.extend_from_slice(input);
            Ok(false)
        }
    }
}

/// The complete frames of `sse` (each ends with a blank line) to `d`, arrived at `now`; the
/// rest stays in `sse`.
fn frames(d: &mut Display, sse: &mut Vec<u8>, now: i64, shared: &Shared, index: usize) {
    let (mut at, mut done) = (0, 0);
    let mut frame = Frame::default();
    while let Some(end) = find_byte(&sse[at..], b'\n') {
        let line = &sse[at..at + end];
        at += end + 1;
        if line.is_empty() {
            d.frame(&std::mem::take(&mut frame), now, shared, index);
            done = at;
        } else {
            frame.line(line);
        }
    }
    sse.drain(..done);
}

/// Bytes read by a display, arrived now: decoded, their complete frames counted, its opening
/// noted (which lets the next display open); why its stream is over, if it is.
fn take(
    d: &mut Display,
    body: &mut Body,
    bytes: &[u8],
    sse: &mut Vec<u8>,
    shared: &Shared,
    index: usize,
    permit: &mut Option<OwnedSemaphorePermit>,
) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let now = now_us();
    let over = decode(body, bytes, sse);
    frames(d, sse, now, shared, index);
    if permit.is_some() && d.opening.is_some() {
        *permit = None;
        shared.opened.fetch_add(1, Ordering::Relaxed);
    }
    match over {
        Ok(false) => None,
        Ok(true) => Some("the server ended the stream".to_owned()),
        Err(e) => Some(e),
    }
}

/// One display: opens its stream with a plain HTTP/1.1 request (at most [`CONNECTING`] at a
/// time, until their first frame), then reads frames until told to stop or until the stream
/// ends. Its own small client rather than reqwest's: 1000 of them read 200 events a second
/// each on the same 2 cores as the server, so each event should cost them little.
async fn display(
    addr: Arc<str>,
    request: Arc<[u8]>,
    shared: Arc<Shared>,
    index: usize,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Display {
    let mut d = Display::default();
    let mut permit = gate.acquire_owned().await.ok();
    let opened = tokio::select! {
        _ = stop.wait_for(|s| *s) => Err("stopped before it opened".to_owned()),
        opened = tokio::time::timeout(Duration::from_secs(30), open(&addr, &request)) => {
            opened.unwrap_or_else(|_| Err("no answer within 30 s".to_owned()))
        }
    };
    let (mut stream, mut body, first) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            d.failure = Some(e);
            shared.failed.fetch_add(1, Ordering::Relaxed);
            return d;
        }
    };
    let mut sse = Vec::with_capacity(16 * 1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut over = take(&mut d, &mut body, &first, &mut sse, &shared, index, &mut permit);
    // Made once (its waiter registered once), and polled only when there is nothing to read.
    let stopping = stop.wait_for(|s| *s);
    tokio::pin!(stopping);
    while over.is_none() {
        let read = tokio::select! {
            biased;
            read = stream.read(&mut buf) => read,
            _ = &mut stopping => break,
        };
        over = match read {
            Ok(0) => Some("the server closed the connection".to_owned()),
            Ok(n) => take(&mut d, &mut body, &buf[..n], &mut sse, &shared, index, &mut permit),
            Err(e) => Some(format!("read: {e}")),
        };
    }
    d.dropped = over;
    if d.opening.is_none() {
        d.failure.get_or_insert_with(|| "no opening frame".to_owned());
        shared.failed.fetch_add(1, Ordering::Relaxed);
    }
    d
}

/// What the sender did.
#[derive(Debug, Default)]
struct Sent {
    sent: u64,
    ok: u64,
    failed: u64,
    /// 201s of the measured part, and their latencies in µs.
    measured_ok: u64,
    latencies: Vec<u64>,
    first_error: Option<String>,
    /// Requests that left more than one period after their time (the sender fell behind).
    late: u64,
}

type Done = (bool, Result<(), String>, Duration);

impl Sent {
    fn add(&mut self, done: Result<Done, tokio::task::JoinError>) {
        match done {
            Ok((measured, Ok(()), took)) => {
                self.ok += 1;
                if measured {
                    self.measured_ok += 1;
                    self.latencies.push(took.as_micros() as u64);
                }
            }
            Ok((_, Err(e), _)) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(format!("{e}"));
            }
        }
    }
}

/// The paced sender, on a runtime of its own (in its own thread): ticket `k` leaves at
/// `t0 + k / per_sec`, whatever the answers to the earlier ones.
fn send(plan: &Plan, t0: Instant, abort: &AtomicBool) -> anyhow::Result<Sent> {
    if plan.waiter_tokens.is_empty() {
        bail!("no waiter works in location {}", plan.location);
    }
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the sender's runtime")?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the sender's HTTP client")?;
    let url = format!("{}/api/v1/orders", plan.url);
    let period = Duration::from_nanos(1_000_000_000 / plan.per_sec.max(1));
    let (warm, total) = (plan.per_sec * plan.warmup, plan.per_sec * (plan.warmup + plan.duration));
    runtime.block_on(async {
        let mut sent = Sent::default();
        let mut running = tokio::task::JoinSet::new();
        for k in 0..total {
            if abort.load(Ordering::Relaxed) {
                break;
            }
            let at = t0 + period * k as u32;
            tokio::time::sleep_until(at.into()).await;
            if at.elapsed() > period {
                sent.late += 1;
            }
            while let Some(done) = running.try_join_next() {
                sent.add(done);
            }
            while running.len() >= SENDER_IN_FLIGHT {
                if let Some(done) = running.join_next().await {
                    sent.add(done);
                }
            }
            let token = &plan.waiter_tokens[k as usize % plan.waiter_tokens.len()];
            let request = client.post(&url).bearer_auth(token).json(&plan.body(k));
            let measured = k >= warm;
            running.spawn(async move {
                let started = Instant::now();
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let text = response.text().await.unwrap_or_default();
                        if status == 201 { Ok(()) } else { Err(format!("{status}: {text}")) }
                    }
                    Err(e) => Err(format!("{e:#}")),
                };
                (measured, outcome, started.elapsed())
            });
            sent.sent += 1;
        }
        while let Some(done) = running.join_next().await {
            sent.add(done);
        }
        Ok(sent)
    })
}

/// CPU seconds (user, system) a process has used: `/proc/<pid>/stat`, in the kernel's
/// `USER_HZ` ticks (100 a second on Linux).
fn cpu_secs(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command's name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? / 100.0, ticks(12)? / 100.0))
}

/// The machine's busy and total CPU seconds so far (`/proc/stat`, all cores).
fn machine_cpu() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: f64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0.0);
    Some(((total - idle) / 100.0, total / 100.0))
}

/// CPU used over the measured part: this process (the displays and the sender), the server,
/// the whole machine.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    this: Option<(f64, f64)>,
    server: Option<(f64, f64)>,
    machine: Option<(f64, f64)>,
}

impl Cpu {
    fn now(server_pid: u32) -> Self {
        Self { this: cpu_secs("self"), server: cpu_secs(&server_pid.to_string()), machine: machine_cpu() }
    }

    fn since(self, start: Self) -> Self {
        let minus = |a: Option<(f64, f64)>, b: Option<(f64, f64)>| Some((a?.0 - b?.0, a?.1 - b?.1));
        Self {
            this: minus(self.this, start.this),
            server: minus(self.server, start.server),
            machine: self.machine.zip(start.machine).map(|((b, t), (b0, t0))| (b - b0, t - t0)),
        }
    }
}

/// One run: the displays open, the sender sends for the warm-up and the measured duration
/// (`reset_rss` is called when the measured part starts), the displays get until
/// [`DRAIN_WITHIN`] after the sender's last answer to receive the location's last event (`head`
/// reads its id from the database), then they close. The details go to `out`.
pub fn run(
    sup: &Supervisor,
    plan: &Plan,
    server_pid: u32,
    reset_rss: &dyn Fn(),
    head: &dyn Fn() -> anyhow::Result<i64>,
    out: &Path,
) -> anyhow::Result<Measure> {
    let n = plan.displays;
    let shared = Arc::new(Shared {
        measured_from_us: AtomicI64::new(i64::MAX),
        opened: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        last: (0..n).map(|_| AtomicI64::new(-1)).collect(),
    });
    // A stop channel for each display thread: its displays' waiters are its own.
    let (stops, stopped): (Vec<_>, Vec<_>) = (0..DISPLAY_THREADS).map(|_| watch::channel(false)).unzip();
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let addr: Arc<str> = plan.url.trim_start_matches("http://").trim_end_matches('/').into();
    let request: Arc<[u8]> = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\nUser-Agent: comanda-bench-w6\r\n\r\n",
        plan.stream_path(),
        plan.display_token
    )
    .into_bytes()
    .into();
    std::thread::scope(|scope| {
        // The displays: DISPLAY_THREADS threads, each a runtime of its own with its share.
        let groups: Vec<_> = (0..DISPLAY_THREADS)
            .map(|group| {
                let (addr, request, shared, gate, stopped) =
                    (addr.clone(), request.clone(), shared.clone(), gate.clone(), stopped[group].clone());
                scope.spawn(move || -> anyhow::Result<Vec<Display>> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("starting a displays' runtime")?;
                    Ok(runtime.block_on(async {
                        let handles: Vec<_> = (group..n)
                            .step_by(DISPLAY_THREADS)
                            .map(|i| {
                                tokio::spawn(display(
                                    addr.clone(),
                                    request.clone(),
                                    shared.clone(),
                                    i,
                                    gate.clone(),
                                    stopped.clone(),
                                ))
                            })
                            .collect();
                        let mut all = Vec::with_capacity(handles.len());
                        for handle in handles {
                            all.push(handle.await.unwrap_or_default());
                        }
                        all
                    }))
                })
            })
            .collect();
        let outcome = drive(sup, plan, server_pid, reset_rss, head, &shared);
        // Whatever happened, the displays stop and their threads end before the scope does.
        for stop in &stops {
            let _ = stop.send(true);
        }
        let mut displays = Vec::with_capacity(n);
        for group in groups {
            displays.extend(group.join().map_err(|_| anyhow::anyhow!("a W6 display thread panicked"))??);
        }
        let (sent, last, timing) = outcome?;
        summarize(plan, &displays, &sent, last, timing, out)
    })
}

/// The run once the display threads are started: waits for them to open, sends (the sender
/// on a thread of its own), waits for the displays to catch up. The sender's record, the
/// location's last event id, and the sending time, the drain time and the CPU used.
fn drive(
    sup: &Supervisor,
    plan: &Plan,
    server_pid: u32,
    reset_rss: &dyn Fn(),
    head: &dyn Fn() -> anyhow::Result<i64>,
    shared: &Shared,
) -> anyhow::Result<(Sent, i64, (Duration, u128, Cpu))> {
    let n = plan.displays;
    let opening = Instant::now();
    loop {
        let done = shared.opened.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        if done >= n {
            break;
        }
        if opening.elapsed() > OPEN_WITHIN {
            bail!("W6: only {done} of {n} displays opened or failed within {} s", OPEN_WITHIN.as_secs());
        }
        sup.sleep(Duration::from_millis(50))?;
    }
    let (opened, failed) = (shared.opened.load(Ordering::Relaxed), shared.failed.load(Ordering::Relaxed));
    sup.say(&format!(
        "W6: {opened} displays open ({failed} failed) in {} ms; sending {} tickets/s to location {} for {}s + {}s",
        opening.elapsed().as_millis(),
        plan.per_sec,
        plan.location,
        plan.warmup,
        plan.duration
    ));
    if opened == 0 {
        bail!("W6: no display could open its stream");
    }

    // The sender starts a little later, on a schedule both sides know.
    let t0 = Instant::now() + Duration::from_millis(200);
    let t0_us = now_us() + 200_000;
    shared.measured_from_us.store(t0_us + plan.warmup as i64 * 1_000_000, Ordering::Relaxed);
    let abort = AtomicBool::new(false);
    let mut cpu_start = Cpu::default();
    let sent = std::thread::scope(|scope| {
        let sender = scope.spawn(|| send(plan, t0, &abort));
        let waited = sup.sleep((t0 + Duration::from_secs(plan.warmup)).saturating_duration_since(Instant::now()));
        if waited.is_ok() {
            reset_rss();
            cpu_start = Cpu::now(server_pid);
        } else {
            abort.store(true, Ordering::Relaxed);
        }
        let sent = sender.join().map_err(|_| anyhow::anyhow!("the W6 sender panicked"))?;
        waited?;
        sent
    })?;
    let cpu = Cpu::now(server_pid).since(cpu_start);
    let sending = t0.elapsed();

    // Every display gets a little while to receive the last event.
    let last = head()?;
    let draining = Instant::now();
    while draining.elapsed() < DRAIN_WITHIN {
        let behind = shared.last.iter().filter(|l| (0..last).contains(&l.load(Ordering::Relaxed))).count();
        if behind == 0 {
            break;
        }
        sup.sleep(Duration::from_millis(20))?;
    }
    Ok((sent, last, (sending, draining.elapsed().as_millis(), cpu)))
}

/// The measure of a run from every display's record and the sender's, and its details in `out`.
fn summarize(
    plan: &Plan,
    displays: &[Display],
    sent: &Sent,
    last: i64,
    (sending, drained_ms, cpu): (Duration, u128, Cpu),
    out: &Path,
) -> anyhow::Result<Measure> {
    let open: Vec<&Display> = displays.iter().filter(|d| d.opening.is_some()).collect();
    let failed = displays.len() - open.len();
    let dropped = open.iter().filter(|d| d.dropped.is_some()).count();
    let sum = |f: &dyn Fn(&Display) -> u64| open.iter().map(|d| f(d)).sum::<u64>();
    let expected = sum(&|d| (last - d.opening.unwrap_or(last)).max(0) as u64);
    let missing = sum(&|d| ((last - d.opening.unwrap_or(last)).max(0) as u64).saturating_sub(d.distinct));
    let (received, duplicates, out_of_order, before) =
        (sum(&|d| d.received), sum(&|d| d.duplicates), sum(&|d| d.out_of_order), sum(&|d| d.before));
    let (other_events, malformed) = (sum(&|d| d.other_events), sum(&|d| d.malformed));
    let openings: std::collections::BTreeSet<i64> = open.iter().filter_map(|d| d.opening).collect();
    let tickets = openings.first().map_or(0, |first| (last - first).max(0) as u64);
    let mut latencies: Vec<u64> = open.iter().flat_map(|d| d.latencies.iter().map(|&l| u64::from(l))).collect();
    let samples = latencies.len();
    let max_us = latencies.iter().copied().max();
    let [p50, p99, p999] = percentiles(std::mem::take(&mut latencies)).unwrap_or([f64::NAN; 3]);
    let send_latencies = percentiles(sent.latencies.clone());
    let errors = failed as u64 + dropped as u64 + missing + duplicates + out_of_order + before + sent.failed;
    let rps = sent.measured_ok as f64 / plan.duration.max(1) as f64;
    let mut fields: std::collections::BTreeMap<String, f64> = [
        ("rps", rps),
        ("errors", errors as f64),
        ("max_ms", max_us.map_or(f64::NAN, |m| m as f64 / 1000.0)),
        ("displays", displays.len() as f64),
        ("failed", failed as f64),
        ("dropped", dropped as f64),
        ("tickets", tickets as f64),
        ("expected", expected as f64),
        ("received", received as f64),
        ("missing", missing as f64),
        ("duplicates", duplicates as f64),
        ("out_of_order", out_of_order as f64),
        ("before", before as f64),
        ("other_events", other_events as f64),
        ("malformed", malformed as f64),
        ("samples", samples as f64),
        ("sent", sent.sent as f64),
        ("sent_ok", sent.ok as f64),
        ("sent_failed", sent.failed as f64),
        ("sent_late", sent.late as f64),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if samples > 0 {
        fields.extend([("p50_ms".to_owned(), p50), ("p99_ms".to_owned(), p99), ("p999_ms".to_owned(), p999)]);
    }
    if let Some([s50, s99, _]) = send_latencies {
        fields.extend([("send_p50_ms".to_owned(), s50), ("send_p99_ms".to_owned(), s99)]);
    }
    let mut text = format!(
        "W6: {} displays of location {} ({} failed to open, {} dropped), {} tickets/s of {} lines for {}s + {}s\n",
        displays.len(),
        plan.location,
        failed,
        dropped,
        plan.per_sec,
        plan.lines,
        plan.warmup,
        plan.duration
    );
    let _ = writeln!(
        text,
        "sender: {} sent in {:.1} s, {} answered 201, {} failed, {} left late; first failure: {}",
        sent.sent,
        sending.as_secs_f64(),
        sent.ok,
        sent.failed,
        sent.late,
        sent.first_error.as_deref().unwrap_or("none")
    );
    let _ = writeln!(
        text,
        "events: location's last id {last}, displays opened at ids {openings:?}; ticket.created expected {expected}, received {received}, missing {missing}, duplicates {duplicates}, out of order {out_of_order}, before the opening {before}; other events {other_events}; unreadable {malformed}; drained in {drained_ms} ms"
    );
    let _ = writeln!(text, "latency samples (measured part, created_at to arrival): {samples}");
    let secs = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.2}"));
    let split = |v: Option<(f64, f64)>| {
        v.map_or_else(|| "?".to_owned(), |(user, sys)| format!("{:.2} (user {user:.2}, system {sys:.2})", user + sys))
    };
    let _ = writeln!(
        text,
        "CPU seconds from the measured part's start to the sender's last answer: this process (displays and sender) {}, comanda-api {}, the machine {} busy of {}",
        split(cpu.this),
        split(cpu.server),
        secs(cpu.machine.map(|m| m.0)),
        secs(cpu.machine.map(|m| m.1))
    );
    for d in displays.iter().filter(|d| d.failure.is_some() || d.dropped.is_some()).take(20) {
        let _ = writeln!(
            text,
            "display at id {:?}: {}",
            d.opening,
            d.failure.as_deref().or(d.dropped.as_deref()).unwrap_or_default()
        );
    }
    let shown: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v:.3}")).collect();
    let _ = writeln!(text, "RESULT {}", shown.join(" "));
    std::fs::write(out, text).with_context(|| out.display().to_string())?;
    Ok(Measure { fields, rss_mb: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(n: usize) -> Shared {
        Shared {
            measured_from_us: AtomicI64::new(0),
            opened: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            last: (0..n).map(|_| AtomicI64::new(-1)).collect(),
        }
    }

    fn event(id: i64, created_at: &str) -> String {
        format!(
            "id: {id}\nevent: ticket.created\ndata: {{\"id\":\"t\",\"number\":1,\"lines\":[],\"created_at\":\"{created_at}\",\"ready_at\":null}}"
        )
    }

    /// `text` as one frame (a blank line added) arrived at `now`.
    fn frame(d: &mut Display, text: &str, now: i64, s: &Shared) {
        let mut sse = format!("{text}\n\n").into_bytes();
        frames(d, &mut sse, now, s, 0);
        assert!(sse.is_empty());
    }

    #[test]
    fn a_display_counts_each_event_once_and_in_order() {
        let s = shared(1);
        let mut d = Display::default();
        frame(&mut d, "retry: 1000\nid: 7", 0, &s);
        assert_eq!((d.opening, s.last[0].load(Ordering::Relaxed)), (Some(7), 7));
        let at = "2026-12-03T18:00:00.000000Z";
        let created = chrono::DateTime::parse_from_rfc3339(at).unwrap().timestamp_micros();
        for id in [8, 10, 9, 10] {
            frame(&mut d, &event(id, at), created + 1500, &s);
        }
        frame(&mut d, ": keep-alive", 0, &s);
        frame(&mut d, "id: 11\nevent: ticket.updated\ndata: {}", 0, &s);
        assert_eq!((d.received, d.distinct, d.duplicates, d.out_of_order), (4, 3, 1, 1));
        assert_eq!((d.comments, d.other_events, d.max), (1, 1, 10));
        assert_eq!(d.latencies, vec![1500, 1500, 1500]);
        assert_eq!(s.last[0].load(Ordering::Relaxed), 10);
    }

    #[test]
    fn chunks_are_decoded_across_reads() {
        let body = b"f\r\nretry: 1000\nid:\r\n4\r\n 7\n\n\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let (mut dechunk, mut out) = (Dechunk::default(), Vec::new());
            let first = dechunk.feed(&body[..split], &mut out).unwrap();
            let second = dechunk.feed(&body[split..], &mut out).unwrap();
            // The body is over with the size line of the last chunk (its CRLF may follow).
            assert_eq!((first, second), (split >= body.len() - 2, true), "split at {split}");
            assert_eq!(out, b"retry: 1000\nid: 7\n\n", "split at {split}");
        }
        assert!(Dechunk::default().feed(b"zz\r\n", &mut Vec::new()).is_err());
        let s = shared(1);
        let mut d = Display::default();
        let mut sse = b"retry: 1000\nid: 7\n\n: keep-alive\n\nid: 8\nev".to_vec();
        frames(&mut d, &mut sse, 0, &s, 0);
        assert_eq!((d.opening, d.comments, sse.as_slice()), (Some(7), 1, &b"id: 8\nev"[..]));
        assert_eq!((find(b"abcabd", b"abd"), find(b"ab", b"abc"), find(b"x", b"")), (Some(3), None, None));
        let long = b"0123456789abcdef0123456789\n\n";
        for from in 0..long.len() {
            let next = if from <= 26 { 26 } else { 27 };
            assert_eq!(find_byte(&long[from..], b'\n'), Some(next - from), "from {from}");
        }
        assert_eq!(find_byte(b"01234567", b'\n'), None);
    }

    #[test]
    fn created_at_is_read_from_the_ticket() {
        let data = r#"{"id":"x","lines":[{"line_id":1,"voided":null}],"created_at":"1970-01-01T00:00:01.000002Z"}"#;
        assert_eq!(created_at_us(data.as_bytes()), Some(1_000_002));
        assert_eq!(created_at_us(b"{}"), None);
    }

    #[test]
    fn the_busiest_location_and_its_waiters() {
        let locations = ["a", "b", "b", "", "a", "b"].map(String::from);
        let tokens = ["t1", "t2", "t3", "t4", "t5", "t6"].map(String::from);
        let (location, mine) = busiest_location(&locations, &tokens).unwrap();
        assert_eq!((location.as_str(), mine), ("b", vec!["t2".to_owned(), "t3".to_owned(), "t6".to_owned()]));
        assert_eq!(busiest_location(&[String::new()], &tokens[..1]), None);
    }

    #[test]
    fn ticket_bodies_have_distinct_products_and_the_location() {
        let plan = Plan {
            url: String::new(),
            location: "L".into(),
            display_token: String::new(),
            waiter_tokens: vec![],
            products: vec!["A".into(), "B".into(), "C".into()],
            displays: 1,
            per_sec: 200,
            lines: 2,
            warmup: 0,
            duration: 1,
        };
        let body = plan.body(1);
        assert_eq!((body["location_id"].as_str(), body["send"].as_bool()), (Some("L"), Some(true)));
        let names: Vec<&str> =
            body["items"].as_array().unwrap().iter().map(|i| i["product_name"].as_str().unwrap()).collect();
        assert_eq!(names, ["C", "A"]);
        assert_eq!(body["items"][0]["unit_price"].as_str(), Some("1.57"));
    }
}
