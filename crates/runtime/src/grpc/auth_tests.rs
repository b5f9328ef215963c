use opentelemetry::trace::TraceContextExt as _;
use tonic::Code;

use super::*;

fn token() -> ServiceToken {
    ServiceToken::new("s3cret-token".to_owned())
}

fn request_with(auth: Option<&str>) -> Request<()> {
    let mut request = Request::new(());
    if let Some(auth) = auth {
        let value = AsciiMetadataValue::try_from(auth).unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

#[test]
fn accepts_the_right_token() {
    let mut server = ServerAuth::new(token());
    assert!(
        server
            .call(request_with(Some("Bearer s3cret-token")))
            .is_ok()
    );
    assert!(
        server
            .call(request_with(Some("bearer s3cret-token")))
            .is_ok()
    );
}

#[test]
fn rejects_wrong_token() {
    let mut server = ServerAuth::new(token());
    for bad in [
        "Bearer s3cret-tokeN",
        "Bearer s3cret",
        "Bearer ",
        "s3cret-token",
        "Basic s3cret-token",
    ] {
        let err = server.call(request_with(Some(bad))).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{bad}");
    }
}

#[test]
fn rejects_missing_token() {
    let mut server = ServerAuth::new(token());
    let err = server.call(request_with(None)).unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[test]
fn empty_server_token_accepts_nothing() {
    let mut server = ServerAuth::new(ServiceToken::new(String::new()));
    let err = server.call(request_with(Some("Bearer "))).unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[test]
fn client_then_server_round_trip() {
    let mut client = ClientAuth::new(token()).unwrap();
    let mut server = ServerAuth::new(token());
    let request = client.call(Request::new(())).unwrap();
    let value = request.metadata().get("authorization").unwrap();
    assert!(value.is_sensitive());
    assert!(server.call(request).is_ok());
}

#[test]
fn client_rejects_unsendable_token() {
    assert!(ClientAuth::new(ServiceToken::new(String::new())).is_err());
    assert!(ClientAuth::new(ServiceToken::new("a\nb".to_owned())).is_err());
}

#[test]
fn trace_context_travels_through_metadata() {
    let _guard = crate::telemetry::init("phirepass-runtime-grpc-test");
    let span = tracing::info_span!("grpc_call");
    let _entered = span.enter();
    let sent = tracing::Span::current()
        .context()
        .span()
        .span_context()
        .trace_id();

    let mut client = ClientAuth::new(token()).unwrap();
    let mut server = ServerAuth::new(token());
    let request = server.call(client.call(Request::new(())).unwrap()).unwrap();
    let cx = remote_context(&request);
    assert!(cx.span().span_context().is_remote());
    assert_eq!(cx.span().span_context().trace_id(), sent);
}

#[test]
fn remote_context_defaults_to_empty() {
    let cx = remote_context(&Request::new(()));
    assert!(!cx.span().span_context().is_valid());
}
