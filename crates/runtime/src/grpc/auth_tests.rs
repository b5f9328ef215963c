use opentelemetry::trace::TraceContextExt as _;

use super::*;

#[test]
fn bearer_is_sent_sensitive_and_read_back() {
    let mut client = CallMetadata::with_token("pp_api_x").unwrap();
    let request = client.call(Request::new(())).unwrap();
    let value = request.metadata().get("authorization").unwrap();
    assert!(value.is_sensitive());
    assert_eq!(bearer(&request), Some("pp_api_x"));
}

#[test]
fn service_calls_carry_no_bearer() {
    let request = CallMetadata::new().call(Request::new(())).unwrap();
    assert!(request.metadata().get("authorization").is_none());
    assert_eq!(bearer(&request), None);
}

#[test]
fn unsendable_tokens_are_refused() {
    assert!(CallMetadata::with_token("").is_err());
    assert!(CallMetadata::with_token("a\nb").is_err());
    assert!(CallMetadata::with_token("a b").is_err());
}

#[test]
fn trace_context_travels_through_headers() {
    let _guard = crate::telemetry::init("phirepass-runtime-grpc-test");
    let span = tracing::info_span!("grpc_call");
    let _entered = span.enter();
    let sent = tracing::Span::current()
        .context()
        .span()
        .span_context()
        .trace_id();
    let request = CallMetadata::new().call(Request::new(())).unwrap();
    let headers = request.metadata().clone().into_headers();
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
    assert!(cx.span().span_context().is_remote());
    assert_eq!(cx.span().span_context().trace_id(), sent);
}

#[test]
fn remote_context_defaults_to_empty() {
    let cx = remote_context(&Request::new(()));
    assert!(!cx.span().span_context().is_valid());
}
