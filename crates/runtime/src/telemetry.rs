//! Tracing and OpenTelemetry setup.
//!
//! Every span gets an OpenTelemetry context (so trace ids propagate across
//! NATS and gRPC even when nothing is exported); spans are exported over OTLP
//! gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Without the `otlp`
//! feature (the agent's build) only the log output is set up.

#[cfg(feature = "otlp")]
use std::time::Duration;

#[cfg(feature = "otlp")]
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
#[cfg(feature = "otlp")]
use opentelemetry::trace::TracerProvider as _;
#[cfg(feature = "otlp")]
use opentelemetry::{Context, global};
#[cfg(feature = "otlp")]
use opentelemetry_sdk::Resource;
#[cfg(feature = "otlp")]
use opentelemetry_sdk::propagation::TraceContextPropagator;
#[cfg(feature = "otlp")]
use opentelemetry_sdk::trace::SdkTracerProvider;
#[cfg(feature = "otlp")]
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::EnvFilter;
#[cfg(feature = "otlp")]
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The log filter variable (`tracing_subscriber::EnvFilter` syntax).
pub const LOG_FILTER_VAR: &str = "RUST_LOG";
/// The variable that turns span export on.
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

#[cfg(feature = "otlp")]
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Flushes and shuts down the tracer provider when dropped. Keep it alive
/// for the whole of `main`.
#[must_use = "dropping the guard shuts telemetry down"]
pub struct TelemetryGuard {
    #[cfg(feature = "otlp")]
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether this guard installed the tracer provider (and shuts it down).
    #[cfg(feature = "otlp")]
    pub fn active(&self) -> bool {
        self.provider.is_some()
    }

    /// Whether this guard installed the tracer provider: never in a build without `otlp`.
    #[cfg(not(feature = "otlp"))]
    pub fn active(&self) -> bool {
        false
    }
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("active", &self.active())
            .finish()
    }
}

#[cfg(feature = "otlp")]
impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(error) = provider.force_flush() {
                eprintln!("telemetry: flush failed: {error}");
            }
            if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                eprintln!("telemetry: shutdown failed: {error}");
            }
        }
    }
}

/// Installs the global subscriber: a fmt layer filtered by `RUST_LOG`
/// (default `info`), an OpenTelemetry layer, and the W3C TraceContext
/// propagator. Never panics: a second call (as in tests) returns an inert
/// guard and leaves the first subscriber in place.
#[cfg(feature = "otlp")]
pub fn init(service_name: &str) -> TelemetryGuard {
    use tracing_subscriber::Layer as _;
    global::set_text_map_propagator(TraceContextPropagator::new());

    let provider = build_provider(service_name);
    let tracer = provider.tracer(service_name.to_owned());
    // The exporter's own HTTP/2 stack must not feed spans back into itself.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter_fn(|meta| !is_exporter_internal(meta.target())));
    let env_filter =
        EnvFilter::try_from_env(LOG_FILTER_VAR).unwrap_or_else(|_| EnvFilter::new("info"));

    let installed = tracing_subscriber::registry()
        .with(env_filter)
        .with(fmt::layer())
        .with(otel_layer)
        .try_init();

    match installed {
        Ok(()) => {
            global::set_tracer_provider(provider.clone());
            TelemetryGuard {
                provider: Some(provider),
            }
        }
        Err(_) => {
            // Already initialised (tests, `phirepass dev`): keep the first one.
            let _ = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT);
            TelemetryGuard { provider: None }
        }
    }
}

/// Installs the global subscriber: a fmt layer filtered by `RUST_LOG`
/// (default `info`). This build has no OpenTelemetry: an OTLP endpoint in the
/// environment is reported, not used.
#[cfg(not(feature = "otlp"))]
pub fn init(service_name: &str) -> TelemetryGuard {
    let env_filter =
        EnvFilter::try_from_env(LOG_FILTER_VAR).unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::registry()
        .with(env_filter)
        .with(fmt::layer())
        .try_init();
    if installed.is_ok() && crate::config::env_opt(OTLP_ENDPOINT_VAR).is_some() {
        tracing::warn!(
            service = service_name,
            "{OTLP_ENDPOINT_VAR} is set, but this build exports no spans (built without the \
             `otlp` feature): unset it, or use a build with it"
        );
    }
    TelemetryGuard {}
}

#[cfg(feature = "otlp")]
fn is_exporter_internal(target: &str) -> bool {
    [
        "h2",
        "hyper",
        "hyper_util",
        "tonic",
        "tower",
        "opentelemetry",
    ]
    .iter()
    .any(|prefix| target.starts_with(prefix))
}

#[cfg(feature = "otlp")]
fn build_provider(service_name: &str) -> SdkTracerProvider {
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let Some(endpoint) = crate::config::env_opt(OTLP_ENDPOINT_VAR) else {
        return builder.build();
    };
    // The tonic exporter spawns its connection onto the current runtime.
    if tokio::runtime::Handle::try_current().is_err() {
        eprintln!("telemetry: no tokio runtime, span export to {endpoint} disabled");
        return builder.build();
    }
    match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => builder.with_batch_exporter(exporter).build(),
        Err(error) => {
            eprintln!("telemetry: cannot build otlp exporter for {endpoint}: {error}");
            builder.build()
        }
    }
}

/// Writes the current span's context as W3C `traceparent`/`tracestate`
/// headers (replacing any already present), e.g. into NATS headers.
#[cfg(feature = "otlp")]
pub fn inject(headers: &mut Vec<(String, String)>) {
    inject_context(&tracing::Span::current().context(), headers);
}

/// Like [`inject`] for an explicit context.
#[cfg(feature = "otlp")]
pub fn inject_context(cx: &Context, headers: &mut Vec<(String, String)>) {
    TraceContextPropagator::new().inject_context(cx, &mut VecCarrier(headers));
}

/// Reads W3C trace headers (names matched case-insensitively) into a context
/// for `span.set_parent(..)`; an empty context when absent or malformed.
#[cfg(feature = "otlp")]
pub fn extract(headers: &[(String, String)]) -> Context {
    TraceContextPropagator::new().extract(&SliceCarrier(headers))
}

/// Makes `span` a child of the trace whose context travels in `headers`
/// (e.g. a NATS message's), so one trace spans edge, bus and holder.
#[cfg(feature = "otlp")]
pub fn follow(span: &tracing::Span, headers: &[(String, String)]) {
    let _ = span.set_parent(extract(headers));
}

#[cfg(feature = "otlp")]
struct VecCarrier<'a>(&'a mut Vec<(String, String)>);

#[cfg(feature = "otlp")]
impl Injector for VecCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.0.push((key.to_owned(), value));
    }
}

#[cfg(feature = "otlp")]
struct SliceCarrier<'a>(&'a [(String, String)]);

#[cfg(feature = "otlp")]
impl Extractor for SliceCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

#[cfg(all(test, feature = "otlp"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt as _;

    #[test]
    fn inject_extract_round_trip() {
        let _guard = init("phirepass-runtime-test");
        let _second = init("phirepass-runtime-test"); // must not panic
        let span = tracing::info_span!("round_trip");
        let _entered = span.enter();
        let sent = tracing::Span::current().context();
        let sent_id = sent.span().span_context().trace_id();
        assert!(sent.span().span_context().is_valid());

        let mut headers = vec![("traceparent".to_owned(), "stale".to_owned())];
        inject(&mut headers);
        assert_eq!(
            headers.iter().filter(|(k, _)| k == "traceparent").count(),
            1
        );

        let received = extract(&headers);
        let remote = received.span().span_context().clone();
        assert!(remote.is_valid());
        assert!(remote.is_remote());
        assert_eq!(remote.trace_id(), sent_id);
    }

    #[test]
    fn extract_without_headers_is_empty() {
        let cx = extract(&[("other".to_owned(), "x".to_owned())]);
        assert!(!cx.span().span_context().is_valid());
    }

    #[test]
    fn extract_is_case_insensitive() {
        let headers = vec![(
            "TraceParent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        )];
        let cx = extract(&headers);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
}
