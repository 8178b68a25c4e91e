//! `comanda-api`: the server.

use std::process::ExitCode;

use anyhow::Context;

use api::{Application, telemetry};
use infrastructure::Settings;
use infrastructure::local_pg::resolve_database;

fn main() -> ExitCode {
    let settings = match Settings::load().and_then(|s| s.check_server().map(|()| s)) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("comanda-api: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(settings.log_format, settings.otel_endpoint.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("comanda-api: OTEL_EXPORTER_OTLP_ENDPOINT could not be used: {e:#}");
            return ExitCode::from(2);
        }
    };
    let code = match run(&settings) {
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

fn run(settings: &Settings) -> anyhow::Result<()> {
    // Kept alive until the server has stopped; dropping it stops the local cluster.
    let (url, local) = resolve_database(settings)?;
    let applied = infrastructure::db::prepare(&url, local.is_some())?;
    if !applied.is_empty() {
        tracing::info!(migrations = %applied.join(", "), "applied pending migrations");
    }
    actix_web::rt::System::new().block_on(async {
        Application::build(settings, &url)?.run_until_stopped().await.context("the server failed")
    })?;
    tracing::info!("stopped");
    drop(local);
    Ok(())
}
