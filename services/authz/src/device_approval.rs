//! The approver's half of device activation: InspectDevice shows what a user
//! code asks for (kind, hostname, source address, when, the node it would
//! replace), and ApproveDevice confirms exactly that request (its device_id).
//! A code alone approves nothing, an existing node is re-keyed only when the
//! approver says so, and a CLI gets admin scope only when an admin asks.

use phirepass_proto::authz as pb;
use phirepass_store::{DeviceApproval, DeviceAuthRow, NodeRow, UserRow, now_millis};

use crate::api_tokens::{SCOPE_ADMIN, SCOPE_READ};
use crate::codes;
use crate::devices::{Devices, KIND_AGENT, KIND_CLI, NOT_USABLE};
use crate::error::{AuthzError, Result};
use crate::limiter::attempt_key;
use crate::nodes::node_to_proto;
use crate::validate;

const UNCONFIRMED: AuthzError = AuthzError::FailedPrecondition(
    "approving needs the device_id of the request you reviewed: look the code up first \
     (InspectDevice, or the /activate page) and confirm what it shows",
);
const ADMIN_ONLY: AuthzError =
    AuthzError::Forbidden("only an admin can give a command-line login admin scope");

impl Devices {
    /// The approving user: known and not disabled.
    async fn approver(&self, user_id: &str) -> Result<UserRow> {
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthzError::NotFound("user"))?;
        if user.disabled {
            return Err(AuthzError::PermissionDenied);
        }
        Ok(user)
    }

    /// The pending authorization behind a typed user code; a wrong code
    /// counts against the user, as a wrong password does.
    async fn pending(&self, user: &UserRow, user_code: &str) -> Result<DeviceAuthRow> {
        let fail_key = attempt_key("device-fail", Some(&user.id));
        let limits = self.limiter.limits();
        if self.limiter.reached(&fail_key, limits.max_failures).await {
            tracing::warn!(user_id = %user.id, "device code refused: too many wrong codes");
            return Err(AuthzError::RateLimited);
        }
        let pending = match codes::user_code_hash(user_code) {
            Some(hash) => {
                self.store
                    .pending_device_by_user_code(&hash, now_millis())
                    .await?
            }
            None => None,
        };
        let Some(device) = pending else {
            self.limiter.bump(&fail_key, limits.window).await;
            tracing::warn!(user_id = %user.id, "device code: unknown user code");
            return Err(NOT_USABLE);
        };
        Ok(device)
    }

    /// `user`'s own node named `name`, which approving an agent would re-key.
    async fn own_node(&self, user: &UserRow, name: &str) -> Result<Option<NodeRow>> {
        Ok(self
            .store
            .node_by_name(name)
            .await?
            .filter(|n| n.user_id == user.id))
    }

    pub(crate) async fn inspect_device(
        &self,
        req: pb::InspectDeviceRequest,
    ) -> Result<pb::DeviceDetails> {
        let user = self.approver(&req.user_id).await?;
        let device = self.pending(&user, &req.user_code).await?;
        let node_name = match req.node_name.trim() {
            "" => device.hostname.to_ascii_lowercase(),
            name => name.to_owned(),
        };
        let existing_node = if device.kind == KIND_AGENT {
            self.own_node(&user, &node_name).await?
        } else {
            None
        };
        tracing::info!(device_id = %device.id, user_id = %user.id, kind = %device.kind, "device request inspected");
        Ok(pb::DeviceDetails {
            can_grant_admin: device.kind == KIND_CLI && user.admin,
            device_id: device.id,
            kind: device.kind,
            hostname: device.hostname,
            client_ip: device.client_ip,
            created_at: device.created_at,
            expires_at: device.expires_at,
            node_name,
            existing_node: existing_node.as_ref().map(node_to_proto),
        })
    }

    pub(crate) async fn approve_device(
        &self,
        req: pb::ApproveDeviceRequest,
    ) -> Result<pb::ApproveDeviceResponse> {
        let user = self.approver(&req.user_id).await?;
        if req.device_id.is_empty() {
            tracing::warn!(user_id = %user.id, "device approval refused: nothing was reviewed");
            return Err(UNCONFIRMED);
        }
        let device = self.pending(&user, &req.user_code).await?;
        if device.id != req.device_id {
            // Not the request the approver reviewed: as good as a wrong code.
            let limits = self.limiter.limits();
            let fail_key = attempt_key("device-fail", Some(&user.id));
            self.limiter.bump(&fail_key, limits.window).await;
            tracing::warn!(user_id = %user.id, device_id = %device.id, "device approval refused: another request than the one reviewed");
            return Err(NOT_USABLE);
        }
        match device.kind.as_str() {
            KIND_AGENT if req.admin_scope => Err(AuthzError::InvalidArgument(
                "admin scope is for command-line logins; an agent gets a node token".into(),
            )),
            KIND_AGENT => {
                self.approve_agent(&user, &device, &req.node_name, req.replace_node)
                    .await
            }
            _ => self.approve_cli(&user, &device, req.admin_scope).await,
        }
    }

    async fn approve_agent(
        &self,
        user: &UserRow,
        device: &DeviceAuthRow,
        node_name: &str,
        replace: bool,
    ) -> Result<pb::ApproveDeviceResponse> {
        validate::node_name(node_name)?;
        // Refuse a taken name before claiming, so the person can pick another.
        let existing = match self.store.target_by_name(node_name).await? {
            None => None,
            Some(target) => match self.own_node(user, node_name).await? {
                Some(node) if node.id == target.id => Some(node),
                _ => return Err(AuthzError::AlreadyExists("node name")),
            },
        };
        if existing.is_some() && !replace {
            tracing::warn!(device_id = %device.id, user_id = %user.id, node = node_name, "agent device approval refused: would re-key an existing node");
            return Err(AuthzError::Exists(format!(
                "you already have a node named {node_name}: approving would give it a new token \
                 and disconnect the agent using it now. Choose another name, or choose to \
                 replace node {node_name}"
            )));
        }
        let approval = DeviceApproval {
            user_id: &user.id,
            node_name: Some(node_name),
            scopes: &[],
        };
        if !self
            .store
            .approve_device(&device.id, approval, now_millis())
            .await?
        {
            // Another approval won the race, or the code just expired.
            return Err(NOT_USABLE);
        }
        let (placeholder, node) = match self.tokens.mint_node_token(user, node_name, None).await {
            Ok(minted) => minted,
            Err(e) => {
                self.store.unapprove_device(&device.id).await?;
                return Err(e);
            }
        };
        // Nobody ever sees this token: the device's poll re-keys the node.
        self.store
            .revoke_token(&placeholder.token_id, now_millis())
            .await?;
        let replaced = existing.is_some();
        tracing::info!(device_id = %device.id, user_id = %user.id, node_id = %node.id, replaced, "agent device approved");
        self.audit
            .change(
                "device.approve",
                &[
                    ("kind", KIND_AGENT),
                    ("username", &user.username),
                    ("node", &node.name),
                    ("replaced", if replaced { "true" } else { "false" }),
                    ("hostname", &device.hostname),
                    ("client_ip", &device.client_ip),
                ],
            )
            .await;
        Ok(pb::ApproveDeviceResponse {
            kind: KIND_AGENT.to_owned(),
            node: Some(node_to_proto(&node)),
            scopes: Vec::new(),
            replaced,
        })
    }

    async fn approve_cli(
        &self,
        user: &UserRow,
        device: &DeviceAuthRow,
        admin_scope: bool,
    ) -> Result<pb::ApproveDeviceResponse> {
        if admin_scope && !user.admin {
            return Err(ADMIN_ONLY);
        }
        // Admin scope only when the approver chose it, whatever her role.
        let mut scopes = vec![SCOPE_READ.to_owned()];
        if admin_scope {
            scopes.insert(0, SCOPE_ADMIN.to_owned());
        }
        let approval = DeviceApproval {
            user_id: &user.id,
            node_name: None,
            scopes: &scopes,
        };
        if !self
            .store
            .approve_device(&device.id, approval, now_millis())
            .await?
        {
            return Err(NOT_USABLE);
        }
        tracing::info!(device_id = %device.id, user_id = %user.id, admin_scope, "cli device approved");
        let joined = scopes.join(" ");
        self.audit
            .change(
                "device.approve",
                &[
                    ("kind", KIND_CLI),
                    ("username", &user.username),
                    ("scopes", &joined),
                    ("hostname", &device.hostname),
                    ("client_ip", &device.client_ip),
                ],
            )
            .await;
        Ok(pb::ApproveDeviceResponse {
            kind: KIND_CLI.to_owned(),
            node: None,
            scopes,
            replaced: false,
        })
    }
}
