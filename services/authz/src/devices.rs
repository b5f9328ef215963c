//! Device activation (RFC 8628 style) for agents and the CLI: the device
//! starts and gets a secret device code plus a short user code; a logged-in
//! person reviews what the user code asks for and confirms it (naming the
//! node, for an agent; see `device_approval`); the device's next poll
//! receives its token, once.
//!
//! No token waits in the database: approval of an agent creates its node
//! (with a token nobody ever sees, revoked at once), and the delivering
//! poll re-keys the node, exactly like CreateNodeToken does for an existing
//! node; a CLI's API token is minted at that poll too.

use std::time::Duration;

use phirepass_proto::authz as pb;
use phirepass_store::{DeviceAuthRow, Store, StoreError, new_id, now_millis};

use crate::accounts::millis;
use crate::api_tokens::MAX_NAME;
use crate::audit::Audit;
use crate::codes;
use crate::error::{AuthzError, Result};
use crate::limiter::{LoginLimiter, attempt_key};
use crate::nodes::{Tokens, node_to_proto};

/// How long a device authorization can be approved, by default.
pub const DEVICE_CODE_TTL: Duration = Duration::from_secs(600);
const POLL_INTERVAL_SECS: u32 = 5;
pub(crate) const KIND_AGENT: &str = "agent";
pub(crate) const KIND_CLI: &str = "cli";
const CODE_KIND: &str = "device";
const MAX_HOSTNAME: usize = 253;
/// The one answer for an unknown, expired or used user code.
pub(crate) const NOT_USABLE: AuthzError = AuthzError::NotFound("device code");
/// Starts counted per client IP over this window.
const START_WINDOW: Duration = Duration::from_secs(60);
/// Longest client address stored (an IPv6 address with a zone fits).
const MAX_CLIENT_IP: usize = 64;

/// Device activation; the tokens it hands out come from [`Tokens`].
pub(crate) struct Devices {
    pub(crate) store: Store,
    pub(crate) limiter: LoginLimiter,
    pub(crate) tokens: Tokens,
    pub(crate) audit: Audit,
    pub(crate) device_starts_per_minute: u64,
    pub(crate) device_code_ttl: Duration,
}

impl Devices {
    pub(crate) async fn start_device_authorization(
        &self,
        req: pb::StartDeviceAuthorizationRequest,
    ) -> Result<pb::DeviceAuthorization> {
        if req.kind != KIND_AGENT && req.kind != KIND_CLI {
            return Err(AuthzError::InvalidArgument(
                "kind must be \"agent\" or \"cli\"".into(),
            ));
        }
        if req.hostname.len() > MAX_HOSTNAME || req.hostname.chars().any(char::is_control) {
            return Err(AuthzError::InvalidArgument(format!(
                "hostname must be at most {MAX_HOSTNAME} printable characters"
            )));
        }
        let key = attempt_key("device-start", req.client_ip.as_deref());
        if self.limiter.bump(&key, START_WINDOW).await > self.device_starts_per_minute {
            tracing::warn!(client_ip = ?req.client_ip, "device authorization refused: rate limited");
            return Err(AuthzError::RateLimited);
        }
        let now = now_millis();
        let row = DeviceAuthRow {
            id: new_id(),
            kind: req.kind,
            hostname: req.hostname,
            client_ip: req
                .client_ip
                .filter(|ip| ip.len() <= MAX_CLIENT_IP && !ip.chars().any(char::is_control))
                .unwrap_or_default(),
            created_at: now,
            expires_at: now.saturating_add(millis(self.device_code_ttl)),
            approved_at: None,
            user_id: None,
            node_name: None,
            scopes: Vec::new(),
            delivered_at: None,
        };
        // A user code may collide with a stored one (expired ones linger
        // until swept): draw again.
        for _ in 0..5 {
            let device_code = codes::new_url_secret();
            let user_code = codes::new_user_code();
            let (Some(device_hash), Some(user_hash)) = (
                codes::url_secret_hash(CODE_KIND, &device_code),
                codes::user_code_hash(&user_code),
            ) else {
                return Err(AuthzError::Hash("device code does not parse".into()));
            };
            match self
                .store
                .insert_device_authorization(&row, &device_hash, &user_hash)
                .await
            {
                Ok(()) => {
                    tracing::info!(device_id = %row.id, kind = %row.kind, "device authorization started");
                    return Ok(pb::DeviceAuthorization {
                        device_code,
                        user_code,
                        expires_at: row.expires_at,
                        interval_secs: POLL_INTERVAL_SECS,
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthzError::Hash("no free device code".into()))
    }

    pub(crate) async fn poll_device_authorization(
        &self,
        req: pb::PollDeviceAuthorizationRequest,
    ) -> Result<pb::PollDeviceAuthorizationResponse> {
        let device = match codes::url_secret_hash(CODE_KIND, &req.device_code) {
            Some(hash) => self.store.device_by_device_code(&hash).await?,
            None => None,
        };
        let device = device
            .filter(|d| d.delivered_at.is_none())
            .ok_or(NOT_USABLE)?;
        let state = |s: &str| pb::PollDeviceAuthorizationResponse {
            state: s.to_owned(),
            ..Default::default()
        };
        let Some(user_id) = device
            .user_id
            .as_deref()
            .filter(|_| device.approved_at.is_some())
        else {
            return Ok(if device.expires_at <= now_millis() {
                state("expired")
            } else {
                state("pending")
            });
        };
        // The claim makes the hand-out happen once, even for concurrent polls.
        if !self
            .store
            .mark_device_delivered(&device.id, now_millis())
            .await?
        {
            return Err(NOT_USABLE);
        }
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthzError::FailedPrecondition("the approving user is gone"))?;
        let mut response = state("approved");
        response.username.clone_from(&user.username);
        if device.kind == KIND_AGENT {
            let node_name = device.node_name.as_deref().unwrap_or_default();
            let (token, node) = self.tokens.mint_node_token(&user, node_name, None).await?;
            response.token = Some(token.secret);
            response.node = Some(node_to_proto(&node));
        } else {
            let name: String = format!("device: {}", device.hostname)
                .chars()
                .take(MAX_NAME)
                .filter(|c| !c.is_control())
                .collect();
            let token = self
                .tokens
                .mint_api_token(&user, name, device.scopes.clone(), None)
                .await?;
            response.token = Some(token.secret);
        }
        tracing::info!(device_id = %device.id, user_id = %user.id, kind = %device.kind, "device token delivered");
        Ok(response)
    }
}
