//! Authorize for relays: the target, and the account on it. The edge names the account the
//! login asked for (`alice:web-1:root`), or asks for the default one (`alice:web-1`), and
//! passes the account the vault names, so authz applies the one rule (grant logins, else the
//! target's default account) and answers which account to use.

use phirepass_proto::authz::{AuthorizeRequest, AuthorizeResponse};
use tracing::{info, warn};

use crate::edge::Conn;
use crate::relay::link;
use crate::username::relay_login;

/// Authorize's reason when the target is reachable but the account is not.
const LOGIN_NOT_ALLOWED: &str = "login not allowed";

/// The account part of an Authorize question.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoginAsk {
    /// The account asked for; empty: the default one.
    pub requested: String,
    /// The account the vault names for the target; empty: none.
    pub configured: String,
}

impl LoginAsk {
    /// Reads the vault's account for `target` (never shown: reading it first reveals nothing).
    pub(crate) async fn for_target(
        conn: &Conn,
        username: &str,
        target: &str,
        account: Option<&str>,
    ) -> Result<Self, String> {
        let plan = link::plan(conn, target, username).await?;
        Ok(Self {
            requested: account.unwrap_or_default().to_owned(),
            configured: plan.configured_login(),
        })
    }
}

pub(crate) async fn authorize(
    conn: &Conn,
    username: &str,
    target: &str,
    action: &str,
    login: &LoginAsk,
) -> Result<AuthorizeResponse, String> {
    let request = AuthorizeRequest {
        user_id: String::new(),
        username: username.to_owned(),
        target: target.to_owned(),
        action: action.to_owned(),
        client_ip: Some(conn.client_ip()),
        login: Some(login.requested.clone()),
        configured_login: login.configured.clone(),
    };
    match conn.edge.authz.clone().authorize(request).await {
        Ok(reply) => {
            let decision = reply.into_inner();
            if decision.allowed {
                Ok(decision)
            } else if decision.reason == LOGIN_NOT_ALLOWED {
                info!(user = username, target, action, login = %decision.login, "relay denied: account not allowed");
                Err(account_refused(username, &decision))
            } else {
                info!(user = username, target, action, reason = %decision.reason, "relay denied");
                // One answer for unknown and forbidden targets: names are not revealed.
                Err(format!(
                    "target {target} does not exist or you may not reach it"
                ))
            }
        }
        Err(status) => {
            warn!(error = %status.message(), "authorize failed");
            Err("the access service is unavailable; try again later".into())
        }
    }
}

/// The target is hers, the account is not: say which accounts are, as logins to type.
fn account_refused(username: &str, d: &AuthorizeResponse) -> String {
    let target = &d.target_name;
    let choices = if d.logins.is_empty() {
        format!(
            "your grant allows only its default account: log in as `{}`",
            relay_login(username, target, None)
        )
    } else {
        let logins: Vec<String> = d
            .logins
            .iter()
            .map(|l| format!("`{}`", relay_login(username, target, Some(l))))
            .collect();
        format!(
            "your grants allow {}: log in as {}",
            d.logins.join(", "),
            logins.join(" or ")
        )
    };
    format!("you may not log in to {target} as {:?}; {choices}", d.login)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_names_the_account_and_the_logins_to_type() {
        let mut d = AuthorizeResponse {
            target_name: "web-1".into(),
            login: "root".into(),
            logins: vec!["deploy".into(), "ops".into()],
            ..Default::default()
        };
        let msg = account_refused("alice", &d);
        assert!(msg.contains("as \"root\""), "{msg}");
        assert!(
            msg.contains("`alice:web-1:deploy` or `alice:web-1:ops`"),
            "{msg}"
        );
        d.logins.clear();
        let msg = account_refused("alice", &d);
        assert!(msg.contains("`alice:web-1`"), "{msg}");
    }
}
