//! `comanda-api`: the server.

use std::process::ExitCode;

use anyhow::Context;

use api::{Application, Config, telemetry};
use infrastructure::local_pg::resolve_database;

fn main() -> ExitCode {
    return_large_blocks_to_the_system();
    trim_the_heap_every(std::time::Duration::from_secs(5));
    let config = match Config::load().and_then(|c| c.settings.check_server().map(|()| c)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("comanda-api: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(config.settings.log_format, config.server.otel_endpoint.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("comanda-api: OTEL_EXPORTER_OTLP_ENDPOINT could not be used: {e:#}");
            return ExitCode::from(2);
        }
    };
    let code = match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "comanda-api stopped");
            eprintln!("comanda-api: {e:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

fn run(config: &Config) -> anyhow::Result<()> {
    // Kept alive until the server has stopped; dropping it stops the local cluster.
    let (url, local) = resolve_database(&config.settings)?;
    let applied = infrastructure::db::prepare(&url, local.is_some().then_some(&config.settings.first_location))?;
    if !applied.is_empty() {
        tracing::info!(migrations = %applied.join(", "), "applied pending migrations");
    }
    actix_web::rt::System::new()
        .block_on(async { Application::build(config, &url)?.run_until_stopped().await.context("the server failed") })?;
    tracing::info!("stopped");
    drop(local);
    Ok(())
}

/// Each login hashes with Argon2id in a block of about 19 MiB. glibc serves such a block from
/// mmap only until it raises its threshold after the first free; from then on the blocks come
/// from per-thread arenas and stay in the process (RSS grows to hundreds of MB after a few
/// logins). A fixed threshold keeps large blocks on mmap, returned to the system when freed.
#[allow(unsafe_code)]
fn return_large_blocks_to_the_system() {
    // SAFETY: mallopt only changes allocator parameters; it runs first thing in main, before
    // any other thread exists, and its result is only informative.
    let _ = unsafe { nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 128 * 1024) };
    // Two arenas instead of eight per core: the many mostly idle threads (blocking pool, order
    // writers, hashing) then do not each keep memory of their own.
    // SAFETY: as above.
    let _ = unsafe { nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2) };
}

/// After a burst (a thousand connections at once), the freed memory stays in glibc's arenas and
/// the process keeps its peak size; trimming every few seconds hands the free pages back.
#[allow(unsafe_code)]
fn trim_the_heap_every(period: std::time::Duration) {
    let spawned = std::thread::Builder::new().name("heap-trim".into()).spawn(move || {
        loop {
            std::thread::sleep(period);
            // SAFETY: malloc_trim only returns free memory of the allocator's own arenas to the
            // system; it takes the arenas' locks itself and has no precondition.
            let _ = unsafe { nix::libc::malloc_trim(0) };
        }
    });
    if let Err(e) = spawned {
        eprintln!("comanda-api: could not start the heap trimmer: {e}");
    }
}
