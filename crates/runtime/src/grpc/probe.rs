//! Calls any unary method with an empty message, whatever its types: what the allowlist tests
//! use to knock on every row of a [`super::Policy`] (and a quick reachability check).

use bytes::Buf as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Request, Status};

use super::AuthedChannel;

/// Sends an empty message to `/<service>/<method>` and discards the answer's body: `Ok` when
/// the handler answered, else the status (from the allowlist, TLS or the handler).
pub async fn call_empty(channel: AuthedChannel, service: &str, method: &str) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = format!("/{service}/{method}")
        .parse()
        .map_err(|_| Status::invalid_argument("bad method path"))?;
    grpc.unary(Request::new(()), path, Empty).await.map(|_| ())
}

#[derive(Debug, Clone, Copy, Default)]
struct Empty;

impl Codec for Empty {
    type Encode = ();
    type Decode = ();
    type Encoder = Empty;
    type Decoder = Empty;

    fn encoder(&mut self) -> Empty {
        Empty
    }

    fn decoder(&mut self) -> Empty {
        Empty
    }
}

impl Encoder for Empty {
    type Item = ();
    type Error = Status;

    fn encode(&mut self, _item: (), _dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

impl Decoder for Empty {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        let n = src.remaining();
        src.advance(n);
        Ok(Some(()))
    }
}

/// Whether `status` is the allowlist's own refusal (not TLS, not a handler).
pub fn refused_by_policy(status: &Status) -> bool {
    (status.code() == tonic::Code::PermissionDenied && status.message().contains(" may not call "))
        || (status.code() == tonic::Code::Unauthenticated
            && status.message().contains("needs a client certificate"))
}

/// Knocks on every row of `policy`: as each service kind (`as_kind`) and as an admin client
/// without a certificate (`as_token`, a bearer token the handlers refuse). Allowed callers must
/// get past the allowlist (the handler may still refuse the empty message); every other kind
/// must get `PERMISSION_DENIED "<kind> may not call <Method>"`, and the bare token on a
/// services-only method `UNAUTHENTICATED`. Returns how many (caller, method) pairs were checked,
/// or the first one that went wrong.
pub async fn exercise(
    policy: &super::Policy,
    as_kind: impl Fn(phirepass_pki::ServiceKind) -> AuthedChannel,
    as_token: AuthedChannel,
) -> Result<usize, String> {
    let mut checked = 0;
    for rule in policy.rules {
        for kind in phirepass_pki::ServiceKind::SERVICES {
            let answer = call_empty(as_kind(kind), policy.service, rule.method).await;
            let allowed = rule.callers.contains(&kind);
            match (&answer, allowed) {
                (Err(s), true) if refused_by_policy(s) => {
                    return Err(format!("{} refused {}: {s:?}", kind.name(), rule.method));
                }
                (Err(s), false)
                    if s.code() == tonic::Code::PermissionDenied
                        && s.message()
                            == format!("{} may not call {}", kind.name(), rule.method) => {}
                (_, false) => {
                    return Err(format!(
                        "{} let {} in: {answer:?}",
                        rule.method,
                        kind.name()
                    ));
                }
                _ => {}
            }
            checked += 1;
        }
        let answer = call_empty(as_token.clone(), policy.service, rule.method).await;
        match (&answer, rule.api_token) {
            (Err(s), true) if refused_by_policy(s) => {
                return Err(format!("{} refused an API token: {s:?}", rule.method));
            }
            (Err(s), false) if s.code() == tonic::Code::Unauthenticated && refused_by_policy(s) => {
            }
            (_, false) => {
                return Err(format!("{} let a bare token in: {answer:?}", rule.method));
            }
            _ => {}
        }
        checked += 1;
    }
    Ok(checked)
}
