//! Structured logs with `tracing`: human lines in development, JSON lines with
//! `LOG_FORMAT=json`; the filter is `RUST_LOG` (default `info`). With
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, the same spans (the request, with its route, status and
//! request id; the database hop and the hashing work as children) are exported as OpenTelemetry
//! traces over OTLP/HTTP; without it no exporter exists at all.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use infrastructure::LogFormat;

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes the spans not yet sent.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!(error = %e, "could not flush the last traces");
        }
    }
}

/// Installs the subscriber (a second call, in tests, keeps the first one).
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt =
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(infrastructure::settings::log_colour());
    let fmt = match format {
        LogFormat::Pretty => fmt.with_target(false).boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(true).with_span_list(false).boxed(),
    };
    let provider = match otlp_endpoint {
        None => None,
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{endpoint}/v1/traces"))
                .with_timeout(Duration::from_secs(5))
                .build()?;
            let resource = opentelemetry_sdk::Resource::builder().with_service_name("comanda-api").build();
            Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
        }
    };
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("comanda-api")));
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init();
    Ok(Telemetry { provider })
}
