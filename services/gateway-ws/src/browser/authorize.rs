//! Whether a browser may open a terminal on a node (authz's `Authorize`), and how a refusal
//! reaches the browser.

use phirepass_proto::authz::{AuthorizeRequest, TargetKind, User};
use phirepass_tunnel::browser_protocol::{ErrorKind, WebFrame};
use tracing::warn;

use super::socket::{WsTx, send};
use crate::browser::terminal::OpenFailure;
use crate::error::GatewayError;
use crate::state::AppState;

/// The node a terminal may be opened on, decided by authz's `Authorize` (which also writes the
/// audit event). "No such node" and "not yours" get one answer, so users cannot probe for others'.
/// The account typed (`account`, once there is one) is checked against the grant's logins: the
/// browser has no stored account, so the typed one stands as the target's default, and a grant
/// that lists logins allows only those, here as on ssh-edge.
pub(super) async fn authorize_node(
    state: &AppState,
    user: &User,
    conn_id: &str,
    node: &str,
    account: &str,
    tx: &mut WsTx,
) -> Option<(String, String)> {
    let client_ip = state.web().get(conn_id).map(|c| c.client_ip.clone());
    let typed = (!account.is_empty()).then(|| account.to_string());
    let req = AuthorizeRequest {
        user_id: user.id.clone(),
        username: String::new(),
        target: node.to_string(),
        action: "shell".into(),
        client_ip,
        configured_login: typed.clone().unwrap_or_default(),
        login: typed,
    };
    let message = match state.authz.clone().authorize(req).await {
        Ok(reply) => {
            let d = reply.into_inner();
            match (d.allowed, TargetKind::try_from(d.target_kind)) {
                (true, Ok(TargetKind::Node)) => return Some((d.target_id, d.target_name)),
                (false, _) if d.reason == LOGIN_NOT_ALLOWED => {
                    // The account field stays editable: the dialog asks again with the choices.
                    let m = login_not_allowed(node, account, &d.logins);
                    warn!(user = %user.username, node = %node, account, "terminal refused: login not allowed");
                    send(tx, WebFrame::error(ErrorKind::RequiresPassword, m)).await;
                    return None;
                }
                (true, _) => format!("{node:?} is a direct host: reach it through the SSH edge"),
                (false, _) if d.reason == "unknown target" || d.reason == "no grant" => {
                    format!("unknown node {node:?}")
                }
                (false, _) => format!("access denied: {}", d.reason),
            }
        }
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            format!("unknown node {node:?}")
        }
        Err(status) => GatewayError::from_status(status, "node").public_message(),
    };
    warn!(user = %user.username, node = %node, reason = %message, "terminal refused");
    send(tx, WebFrame::error(ErrorKind::Generic, message)).await;
    None
}

/// Authz's reason when the target is granted but the requested account is not.
const LOGIN_NOT_ALLOWED: &str = "login not allowed";

fn login_not_allowed(node: &str, account: &str, logins: &[String]) -> String {
    format!(
        "you may not log in to {node} as {account:?}; your grants allow: {}",
        logins.join(", ")
    )
}

/// Tells the browser why no terminal opened: `requires_password` asks again.
pub(super) async fn refuse(tx: &mut WsTx, node_name: &str, failure: OpenFailure) {
    match failure {
        OpenFailure::RequiresPassword(m) => {
            send(tx, WebFrame::error(ErrorKind::RequiresPassword, m)).await;
        }
        OpenFailure::Other(m) => {
            warn!(node = %node_name, reason = %m, "terminal open failed");
            send(tx, WebFrame::error(ErrorKind::Generic, m)).await;
        }
    }
}
