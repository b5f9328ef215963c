//! The `Commands` gRPC service (proto/commands.proto) on the gateway's internal listener
//! (`GATEWAY_GRPC_ADDR`): TLS with the gateway-ws identity, callers are users presenting an API
//! token (`authorization: Bearer`), verified with authz `VerifyApiToken`. Running a command
//! changes things, so it needs a token with the `admin` scope; `NodeStatus` reads, and a
//! `read` token will do. Every run goes through the same [`runner`] as the web UI.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use phirepass_proto::authz::VerifyApiTokenRequest;
use phirepass_proto::commands as pb;
use phirepass_proto::commands::commands_server::{Commands, CommandsServer};
use phirepass_runtime::grpc::server::{GrpcService, serve as serve_grpc};
use phirepass_runtime::grpc::tls::PeerInfo;
use phirepass_runtime::grpc::{GrpcError, Policy, Rule, TokenNeed, api_token};
use phirepass_tunnel::command::{CommandInfo, ParamKind, RunResult};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::{Request, Response, Status};
use tracing::{error, warn};

use crate::commands::audit::Caller;
use crate::commands::nodes;
use crate::commands::runner::{self, RunEvent, RunRequest};
use crate::error::GatewayError;
use crate::state::AppState;

/// The fully qualified service name.
pub const SERVICE_NAME: &str = "phirepass.commands.v1.Commands";

/// Who may call what: users with API tokens only; no service calls this one.
pub const POLICY: Policy = Policy {
    service: SERVICE_NAME,
    rules: &[
        Rule::admin("RunCommand", &[]),
        Rule::admin("RunCommandStream", &[]),
        Rule::admin("NodeStatus", &[]),
    ],
};

/// Largest stdout (and stderr) `RunCommand` returns in its one message; the streaming call
/// has no such cap. Beyond it the result says truncated.
const MAX_UNARY_OUTPUT: usize = 1536 * 1024;

/// Serves `Commands` on `listener` until `shutdown`.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GrpcError> {
    let identity = state.config.identity.clone();
    let service = GrpcService {
        name: SERVICE_NAME,
        routes: Routes::new(CommandsServer::new(CommandsService { state })),
        policy: POLICY,
    };
    let served = serve_grpc(
        service,
        phirepass_proto::FILE_DESCRIPTOR_SET,
        listener,
        &identity,
        shutdown,
    )
    .await;
    if let Err(e) = &served {
        error!(error = %e, "commands grpc service stopped");
    }
    served
}

struct CommandsService {
    state: Arc<AppState>,
}

impl CommandsService {
    /// The API token's user, if the token allows `need`.
    async fn caller<T>(&self, request: &Request<T>, need: TokenNeed) -> Result<Caller, Status> {
        let Some(token) = api_token(request)? else {
            return Err(Status::unauthenticated("present an API token"));
        };
        let reply = match self
            .state
            .authz
            .clone()
            .verify_api_token(VerifyApiTokenRequest {
                token: token.to_owned(),
            })
            .await
        {
            Ok(reply) => reply.into_inner(),
            Err(s) if s.code() == tonic::Code::Unauthenticated => {
                warn!("api token refused by authz");
                return Err(Status::unauthenticated("invalid API token"));
            }
            Err(s) => {
                error!(code = ?s.code(), "authz unreachable for an api token check");
                return Err(Status::unavailable(
                    "authz unavailable to check the API token",
                ));
            }
        };
        let Some(user) = reply.user.filter(|u| !u.disabled) else {
            return Err(Status::permission_denied(
                "the API token's user is disabled",
            ));
        };
        if !need.allowed_by(&reply.scopes) {
            warn!(user = %user.username, ?need, "api token lacks the scope");
            return Err(Status::permission_denied(
                "this API token is read-only (scope read): running a command needs a token \
                 with the admin scope (phirepass admin tokens api create --scope admin)",
            ));
        }
        let client_ip = request
            .extensions()
            .get::<PeerInfo>()
            .and_then(|p| p.remote)
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        Ok(Caller {
            user_id: user.id,
            username: user.username,
            client_ip,
            via: "grpc",
        })
    }

    async fn start(&self, request: Request<pb::RunCommandRequest>) -> Result<runner::Run, Status> {
        let caller = self.caller(&request, TokenNeed::Change).await?;
        let r = request.into_inner();
        let run = RunRequest {
            node: r.node,
            command: r.command,
            params: r.params.into_iter().collect(),
            correlation_id: r.correlation_id,
        };
        runner::start(&self.state, &caller, run)
            .await
            .map_err(|e| e.to_status())
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RunCommandEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Commands for CommandsService {
    async fn run_command(
        &self,
        request: Request<pb::RunCommandRequest>,
    ) -> Result<Response<pb::RunCommandResponse>, Status> {
        let mut run = self.start(request).await?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let (mut stdout_cut, mut stderr_cut) = (false, false);
        let result = loop {
            match run.events.recv().await {
                Some(Ok(RunEvent::Stdout(b))) => stdout_cut |= append(&mut stdout, &b),
                Some(Ok(RunEvent::Stderr(b))) => stderr_cut |= append(&mut stderr, &b),
                Some(Ok(RunEvent::Finished(result))) => break result,
                Some(Err(e)) => return Err(e.to_status()),
                None => return Err(Status::unavailable("the run ended without a result")),
            }
        };
        let mut result = result_to_proto(&result);
        result.stdout_truncated |= stdout_cut;
        result.stderr_truncated |= stderr_cut;
        Ok(Response::new(pb::RunCommandResponse {
            node_id: run.node_id,
            node_name: run.node_name,
            correlation_id: run.correlation_id,
            stdout,
            stderr,
            result: Some(result),
        }))
    }

    type RunCommandStreamStream = EventStream;

    async fn run_command_stream(
        &self,
        request: Request<pb::RunCommandRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let run = self.start(request).await?;
        let started = pb::RunCommandEvent {
            event: Some(pb::run_command_event::Event::Started(pb::RunStarted {
                node_id: run.node_id,
                node_name: run.node_name,
                correlation_id: run.correlation_id,
            })),
        };
        let rest = runner::into_stream(run.events).map(|event| {
            use pb::run_command_event::Event;
            let event = match event.map_err(|e| e.to_status())? {
                RunEvent::Stdout(b) => Event::Stdout(b.to_vec()),
                RunEvent::Stderr(b) => Event::Stderr(b.to_vec()),
                RunEvent::Finished(result) => Event::Finished(result_to_proto(&result)),
            };
            Ok(pb::RunCommandEvent { event: Some(event) })
        });
        let stream = futures_util::stream::once(async move { Ok(started) }).chain(rest);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn node_status(
        &self,
        request: Request<pb::NodeStatusRequest>,
    ) -> Result<Response<pb::NodeStatusResponse>, Status> {
        let caller = self.caller(&request, TokenNeed::Read).await?;
        let wanted = request.into_inner().node;
        let state = &self.state;
        let node = nodes::find(state, &caller.user_id, &caller.username, &wanted)
            .await
            .map_err(|e| e.to_status())?;
        let presence = nodes::presence(state, &node.node_id)
            .await
            .map_err(|e: GatewayError| e.to_status())?;
        let agent = presence.as_ref().and_then(nodes::agent_status);
        let agent = agent.unwrap_or_default();
        Ok(Response::new(pb::NodeStatusResponse {
            node_id: node.node_id,
            node_name: node.name,
            online: presence.is_some(),
            gateway_id: presence
                .as_ref()
                .map(|p| p.gateway_id.clone())
                .unwrap_or_default(),
            connected_at: presence.as_ref().map_or(0, |p| p.connected_at),
            last_heartbeat: presence.as_ref().map_or(0, |p| p.last_heartbeat),
            agent_version: agent.version,
            agent_started_at: i64::try_from(agent.started_at).unwrap_or(i64::MAX),
            commands: agent.commands.iter().map(command_to_proto).collect(),
        }))
    }
}

/// Appends up to the unary cap; `true` when something was cut.
fn append(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let room = MAX_UNARY_OUTPUT.saturating_sub(out.len());
    out.extend_from_slice(&bytes[..bytes.len().min(room)]);
    bytes.len() > room
}

fn result_to_proto(r: &RunResult) -> pb::RunResult {
    pb::RunResult {
        exit_code: r.exit_code,
        signal: r.signal,
        duration_ms: r.duration_ms,
        stdout_bytes: r.stdout_bytes,
        stderr_bytes: r.stderr_bytes,
        stdout_truncated: r.stdout_truncated,
        stderr_truncated: r.stderr_truncated,
        timed_out: r.timed_out,
        error: r.error.clone().unwrap_or_default(),
    }
}

fn command_to_proto(c: &CommandInfo) -> pb::CommandInfo {
    let params = c
        .params
        .iter()
        .map(|p| {
            let mut info = pb::ParamInfo {
                name: p.name.clone(),
                required: p.required,
                secret: p.secret,
                default: p.default.clone(),
                description: p.description.clone(),
                ..Default::default()
            };
            match &p.kind {
                ParamKind::String { pattern, max_len } => {
                    info.r#type = "string".into();
                    info.pattern = pattern.clone().unwrap_or_default();
                    info.max_len = max_len.unwrap_or(0);
                }
                ParamKind::Enum { values } => {
                    info.r#type = "enum".into();
                    info.values = values.clone();
                }
                ParamKind::Integer { min, max } => {
                    info.r#type = "integer".into();
                    info.min = *min;
                    info.max = *max;
                }
                ParamKind::Path { root } => {
                    info.r#type = "path".into();
                    info.root = root.clone();
                }
            }
            info
        })
        .collect();
    pb::CommandInfo {
        name: c.name.clone(),
        description: c.description.clone(),
        builtin: c.builtin,
        params,
        timeout_secs: c.timeout_secs,
        output_limit_bytes: c.output_limit_bytes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_exactly_one_row() {
        let proto = include_str!("../../../../proto/commands.proto");
        assert_eq!(POLICY.mismatches_with_proto(proto), Vec::<String>::new());
    }
}
