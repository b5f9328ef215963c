//! The `phirepass.secrets.v1.Secrets` gRPC service: thin handlers that
//! record a span (parented to the caller's trace), convert wire types, and
//! delegate to [`Vault`]. Spans never record a value or secret.

use phirepass_pki::ServiceKind;
use phirepass_proto::secrets as pb;
use phirepass_proto::secrets::secrets_server::{Secrets, SecretsServer};
use phirepass_runtime::grpc::{Caller, remote_context};
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use phirepass_bus::EventLog;

use crate::api_tokens::{Actor, ApiTokens, Need};
use crate::auth::{CallerAuth, require_internal};
use crate::convert::{credential_to_proto, reveal, status_to_proto, take_secret};
use crate::credentials::{CredentialKind, NewCredential};
use crate::error::{Result, SecretsError};
use crate::resolve::AuthSource;
use crate::vault::Vault;

/// The one option the edges' certificates may set (pinned target host keys).
const HOST_KEY_PIN: &str = "hostkey.openssh";

/// The Secrets gRPC service. Cheap to clone.
#[derive(Clone)]
pub struct SecretsService {
    vault: Vault,
    api: Option<Arc<ApiTokens>>,
    events: Arc<dyn EventLog>,
    audit_subject: String,
}

impl std::fmt::Debug for SecretsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsService")
            .field("api_tokens", &self.api.is_some())
            .field("audit_subject", &self.audit_subject)
            .finish_non_exhaustive()
    }
}

/// The authenticated tonic service, ready for `Server::add_service`.
pub type AuthedSecretsServer = InterceptedService<SecretsServer<SecretsService>, CallerAuth>;

impl SecretsService {
    /// A service without API tokens and with an in-memory audit log.
    pub fn new(vault: Vault) -> Self {
        Self {
            vault,
            api: None,
            events: Arc::new(phirepass_bus::MemoryEventLog::new()),
            audit_subject: crate::AUDIT_SUBJECT.to_owned(),
        }
    }

    /// Accepts authz API tokens, verified with `api`.
    pub(crate) fn with_api_tokens(mut self, api: Option<Arc<ApiTokens>>) -> Self {
        self.api = api;
        self
    }

    /// Publishes vault changes on `subject` of `events`.
    pub fn with_audit(mut self, events: Arc<dyn EventLog>, subject: String) -> Self {
        self.events = events;
        self.audit_subject = subject;
        self
    }

    async fn allow<T>(
        &self,
        request: &Request<T>,
        need: Need,
    ) -> std::result::Result<Actor, Status> {
        crate::api_tokens::allow(self.api.as_deref(), request, need)
            .await
            .map_err(Status::from)
    }

    /// Publishes a change; a log failure is logged and the change stands.
    async fn audit(&self, actor: &Actor, action: &str, details: &[(&str, &str)]) {
        crate::audit::publish(
            self.events.as_ref(),
            &self.audit_subject,
            actor.name(),
            action,
            details,
        )
        .await;
    }

    /// Wraps the service: a service the allowlist admitted is an internal caller, the
    /// optional admin token an admin one; anything else is refused.
    pub fn into_server(self, admin_token: Option<String>) -> AuthedSecretsServer {
        let api_tokens = self.api.is_some();
        SecretsServer::with_interceptor(
            self,
            CallerAuth::new(admin_token).with_api_tokens(api_tokens),
        )
    }
}

fn link<T>(request: &Request<T>) {
    let _ = tracing::Span::current().set_parent(remote_context(request));
}

fn ok<T>(result: Result<T>) -> std::result::Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    #[tracing::instrument(name = "secrets.set_option", skip_all, fields(host = %request.get_ref().host, key = %request.get_ref().key))]
    async fn set_option(
        &self,
        request: Request<pb::SetOptionRequest>,
    ) -> std::result::Result<Response<pb::SetOptionResponse>, Status> {
        link(&request);
        let (host, key) = (
            request.get_ref().host.clone(),
            request.get_ref().key.clone(),
        );
        // The edges write host-key pins (accept-once) and nothing else: a gateway's certificate
        // must not be able to turn off `insecure` checks or change where a host lives.
        if let Some(Caller::Service(kind @ (ServiceKind::GatewayWs | ServiceKind::SshEdge))) =
            request.extensions().get::<Caller>()
            && key != HOST_KEY_PIN
        {
            return Err(Status::permission_denied(format!(
                "{kind} may set only {HOST_KEY_PIN}"
            )));
        }
        let actor = self.allow(&request, Need::Admin).await?;
        let mut req = request.into_inner();
        let value = take_secret(&mut req.value);
        let result = self.vault.set_option(&req.host, &req.key, &value).await;
        let reply = ok(result.map(|()| pb::SetOptionResponse {}));
        if reply.is_ok() {
            self.audit(&actor, "option.set", &[("host", &host), ("key", &key)])
                .await;
        }
        reply
    }

    #[tracing::instrument(name = "secrets.unset_option", skip_all, fields(host = %request.get_ref().host, key = %request.get_ref().key))]
    async fn unset_option(
        &self,
        request: Request<pb::UnsetOptionRequest>,
    ) -> std::result::Result<Response<pb::UnsetOptionResponse>, Status> {
        link(&request);
        let (host, key) = (
            request.get_ref().host.clone(),
            request.get_ref().key.clone(),
        );
        let actor = self.allow(&request, Need::Admin).await?;
        let req = request.get_ref();
        let result = self.vault.unset_option(&req.host, &req.key).await;
        let reply = ok(result.map(|removed| pb::UnsetOptionResponse { removed }));
        if reply.is_ok() {
            self.audit(&actor, "option.unset", &[("host", &host), ("key", &key)])
                .await;
        }
        reply
    }

    #[tracing::instrument(name = "secrets.list_options", skip_all, fields(host = %request.get_ref().host))]
    async fn list_options(
        &self,
        request: Request<pb::ListOptionsRequest>,
    ) -> std::result::Result<Response<pb::ListOptionsResponse>, Status> {
        link(&request);
        let _actor = self.allow(&request, Need::Read).await?;
        let result = self.vault.list_options(&request.get_ref().host).await;
        ok(result.map(|options| pb::ListOptionsResponse {
            options: options
                .into_iter()
                .map(|o| pb::HostOption {
                    key: o.key,
                    value: o.value,
                    secret: o.secret,
                    updated_at: o.updated_at,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(name = "secrets.delete_host_options", skip_all, fields(host = %request.get_ref().host))]
    async fn delete_host_options(
        &self,
        request: Request<pb::DeleteHostOptionsRequest>,
    ) -> std::result::Result<Response<pb::DeleteHostOptionsResponse>, Status> {
        link(&request);
        let host = request.get_ref().host.clone();
        let actor = self.allow(&request, Need::Admin).await?;
        let result = self
            .vault
            .delete_host_options(&request.get_ref().host)
            .await;
        let reply = ok(result.map(|n| pb::DeleteHostOptionsResponse {
            removed: u32::try_from(n).unwrap_or(u32::MAX),
        }));
        if reply.is_ok() {
            self.audit(&actor, "options.delete", &[("host", &host)])
                .await;
        }
        reply
    }

    #[tracing::instrument(name = "secrets.create_credential", skip_all, fields(name = %request.get_ref().name))]
    async fn create_credential(
        &self,
        request: Request<pb::CreateCredentialRequest>,
    ) -> std::result::Result<Response<pb::Credential>, Status> {
        link(&request);
        let name = request.get_ref().name.clone();
        let actor = self.allow(&request, Need::Admin).await?;
        let mut req = request.into_inner();
        let secret = take_secret(&mut req.secret);
        let passphrase = req.passphrase.as_mut().map(take_secret);
        let kind = match pb::CredentialKind::try_from(req.kind) {
            Ok(pb::CredentialKind::Password) => CredentialKind::Password,
            Ok(pb::CredentialKind::SshKey) => CredentialKind::SshKey,
            _ => {
                return ok(Err(SecretsError::InvalidArgument(
                    "kind must be password or ssh_key".into(),
                )));
            }
        };
        let new = NewCredential {
            name: req.name,
            kind,
            secret,
            passphrase,
            meta_json: req.meta_json,
        };
        let reply = ok(self
            .vault
            .create_credential(new)
            .await
            .map(credential_to_proto));
        if reply.is_ok() {
            self.audit(&actor, "credential.create", &[("name", &name)])
                .await;
        }
        reply
    }

    #[tracing::instrument(name = "secrets.list_credentials", skip_all)]
    async fn list_credentials(
        &self,
        request: Request<pb::ListCredentialsRequest>,
    ) -> std::result::Result<Response<pb::ListCredentialsResponse>, Status> {
        link(&request);
        let _actor = self.allow(&request, Need::Read).await?;
        let result = self.vault.list_credentials().await;
        ok(result.map(|list| pb::ListCredentialsResponse {
            credentials: list.into_iter().map(credential_to_proto).collect(),
        }))
    }

    #[tracing::instrument(name = "secrets.delete_credential", skip_all, fields(name = %request.get_ref().name, force = request.get_ref().force))]
    async fn delete_credential(
        &self,
        request: Request<pb::DeleteCredentialRequest>,
    ) -> std::result::Result<Response<pb::DeleteCredentialResponse>, Status> {
        link(&request);
        let name = request.get_ref().name.clone();
        let actor = self.allow(&request, Need::Admin).await?;
        let req = request.get_ref();
        let result = self.vault.delete_credential(&req.name, req.force).await;
        let reply =
            ok(result.map(|unassigned_hosts| pb::DeleteCredentialResponse { unassigned_hosts }));
        if reply.is_ok() {
            self.audit(&actor, "credential.delete", &[("name", &name)])
                .await;
        }
        reply
    }

    #[tracing::instrument(name = "secrets.assign_credential", skip_all, fields(host = %request.get_ref().host, name = %request.get_ref().name))]
    async fn assign_credential(
        &self,
        request: Request<pb::AssignCredentialRequest>,
    ) -> std::result::Result<Response<pb::AssignCredentialResponse>, Status> {
        link(&request);
        let (host, name) = (
            request.get_ref().host.clone(),
            request.get_ref().name.clone(),
        );
        let actor = self.allow(&request, Need::Admin).await?;
        let req = request.get_ref();
        let result = self.vault.assign_credential(&req.host, &req.name).await;
        let reply = ok(result.map(|()| pb::AssignCredentialResponse {}));
        if reply.is_ok() {
            self.audit(
                &actor,
                "credential.assign",
                &[("host", &host), ("name", &name)],
            )
            .await;
        }
        reply
    }

    #[tracing::instrument(name = "secrets.unassign_credential", skip_all, fields(host = %request.get_ref().host))]
    async fn unassign_credential(
        &self,
        request: Request<pb::UnassignCredentialRequest>,
    ) -> std::result::Result<Response<pb::UnassignCredentialResponse>, Status> {
        link(&request);
        let host = request.get_ref().host.clone();
        let actor = self.allow(&request, Need::Admin).await?;
        let result = self
            .vault
            .unassign_credential(&request.get_ref().host)
            .await;
        let reply = ok(result.map(|was_assigned| pb::UnassignCredentialResponse { was_assigned }));
        if reply.is_ok() {
            self.audit(&actor, "credential.unassign", &[("host", &host)])
                .await;
        }
        reply
    }

    #[tracing::instrument(name = "secrets.resolve_host_auth", skip_all, fields(host = %request.get_ref().host))]
    async fn resolve_host_auth(
        &self,
        request: Request<pb::ResolveHostAuthRequest>,
    ) -> std::result::Result<Response<pb::HostAuth>, Status> {
        link(&request);
        require_internal(&request)?;
        let auth = match self.vault.resolve_host_auth(&request.get_ref().host).await {
            Ok(auth) => auth,
            Err(e) => return ok(Err(e)),
        };
        let source = match auth.source {
            AuthSource::Inline => pb::AuthSource::Inline,
            AuthSource::Credential => pb::AuthSource::Credential,
        };
        Ok(Response::new(pb::HostAuth {
            source: source as i32,
            method: auth.method,
            username: auth.username,
            password: reveal(auth.password),
            identity: reveal(auth.identity),
            passphrase: reveal(auth.passphrase),
            credential_name: auth.credential_name,
            options: auth.options.into_iter().collect(),
        }))
    }

    #[tracing::instrument(name = "secrets.rotate", skip_all, fields(new_key_id = %request.get_ref().new_key_id))]
    async fn rotate(
        &self,
        request: Request<pb::RotateRequest>,
    ) -> std::result::Result<Response<pb::RotationStatus>, Status> {
        link(&request);
        let new_key_id = request.get_ref().new_key_id.clone();
        let actor = self.allow(&request, Need::Admin).await?;
        let req = request.get_ref();
        let max = req.max_entries.filter(|&n| n > 0).map(u64::from);
        let reply = ok(self
            .vault
            .rotate(&req.new_key_id, max)
            .await
            .map(status_to_proto));
        if reply.is_ok() {
            self.audit(&actor, "rotate", &[("new_key_id", &new_key_id)])
                .await;
        }
        reply
    }

    #[tracing::instrument(name = "secrets.rotation_status", skip_all)]
    async fn rotation_status(
        &self,
        request: Request<pb::RotationStatusRequest>,
    ) -> std::result::Result<Response<pb::RotationStatus>, Status> {
        link(&request);
        let _actor = self.allow(&request, Need::Read).await?;
        ok(self.vault.rotation_status().await.map(status_to_proto))
    }
}
