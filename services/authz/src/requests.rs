//! Requests as the components take them. Protobuf messages are converted at
//! the edge (`TryFrom`); a malformed one is refused there, with
//! INVALID_ARGUMENT, before anything is looked up.

use phirepass_proto::authz as pb;
use phirepass_store::PrincipalKind;

use crate::decision_cache::Who;
use crate::error::{AuthzError, Result};
use crate::validate;

/// Who an access question is about, as the edge named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    Id(String),
    Name(String),
}

/// One access question: may `subject` do `action` on `target`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessQuery {
    pub(crate) subject: Subject,
    /// A target name or id.
    pub(crate) target: String,
    pub(crate) action: String,
    pub(crate) client_ip: Option<String>,
    /// The account the caller will log in as: `None` checks none, `Some("")` asks for the
    /// default one (see `authorize::resolve_login`).
    pub(crate) login: Option<String>,
    /// The account the target's stored login names; empty when none.
    pub(crate) configured_login: String,
}

impl AccessQuery {
    /// The question behind an open ticket: the user's access to the target (or to run
    /// `command` on it), no account.
    pub(crate) fn ticket(who: Who<'_>, target: &str, command: Option<&str>) -> Self {
        Self {
            subject: match who {
                Who::Id(id) => Subject::Id(id.to_owned()),
                Who::Name(name) => Subject::Name(name.to_owned()),
            },
            target: target.to_owned(),
            action: command.map_or_else(
                || "open".to_owned(),
                |c| format!("{}{c}", crate::command_access::COMMAND_ACTION),
            ),
            client_ip: None,
            login: None,
            configured_login: String::new(),
        }
    }

    /// The command of a `command:<name>` action.
    pub(crate) fn command(&self) -> Option<&str> {
        crate::command_access::command_of(&self.action)
    }

    pub(crate) fn who(&self) -> Who<'_> {
        match &self.subject {
            Subject::Id(id) => Who::Id(id),
            Subject::Name(name) => Who::Name(name),
        }
    }
}

impl TryFrom<pb::AuthorizeRequest> for AccessQuery {
    type Error = AuthzError;

    fn try_from(req: pb::AuthorizeRequest) -> Result<Self> {
        validate::action(&req.action)?;
        if req.target.is_empty() {
            return Err(AuthzError::InvalidArgument("target is required".into()));
        }
        let subject = match (req.user_id.is_empty(), req.username.is_empty()) {
            (false, true) => Subject::Id(req.user_id),
            (true, false) => Subject::Name(req.username),
            _ => {
                return Err(AuthzError::InvalidArgument(
                    "exactly one of user_id and username is required".into(),
                ));
            }
        };
        if let Some(login) = req.login.as_deref().filter(|l| !l.is_empty()) {
            validate::account(login)?;
        }
        if req.login.is_some() && crate::command_access::command_of(&req.action).is_some() {
            return Err(AuthzError::InvalidArgument(
                "a command action takes no login: commands run as the host declares".into(),
            ));
        }
        // The vault's account is compared, never parsed: only its size is bounded.
        if req.configured_login.len() > 256 {
            return Err(AuthzError::InvalidArgument(
                "configured_login is longer than 256 bytes".into(),
            ));
        }
        Ok(Self {
            subject,
            target: req.target,
            action: req.action,
            client_ip: req.client_ip,
            login: req.login,
            configured_login: req.configured_login,
        })
    }
}

/// A grant to add or take away: a user or group by name, a target by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantChange {
    pub(crate) principal_kind: PrincipalKind,
    pub(crate) principal: String,
    pub(crate) target: String,
    /// Accounts on the target, in the order given, each once (grants only).
    pub(crate) logins: Vec<String>,
    /// Commands (names or `*`), in the order given, each once (grants only).
    pub(crate) commands: Vec<String>,
    /// `target` names a node group, not a target.
    pub(crate) node_group: bool,
}

/// Most logins one grant lists.
const MAX_GRANT_LOGINS: usize = 16;
/// Most commands one grant lists.
const MAX_GRANT_COMMANDS: usize = 64;

/// USER or GROUP; anything else is refused.
pub(crate) fn principal_kind(kind: i32) -> Result<PrincipalKind> {
    match pb::PrincipalKind::try_from(kind) {
        Ok(pb::PrincipalKind::User) => Ok(PrincipalKind::User),
        Ok(pb::PrincipalKind::Group) => Ok(PrincipalKind::Group),
        _ => Err(AuthzError::InvalidArgument(
            "principal_kind must be USER or GROUP".into(),
        )),
    }
}

impl TryFrom<pb::GrantRequest> for GrantChange {
    type Error = AuthzError;

    fn try_from(req: pb::GrantRequest) -> Result<Self> {
        let mut logins: Vec<String> = Vec::with_capacity(req.logins.len());
        for login in req.logins {
            validate::account(&login)?;
            if !logins.contains(&login) {
                logins.push(login);
            }
        }
        if logins.len() > MAX_GRANT_LOGINS {
            return Err(AuthzError::InvalidArgument(format!(
                "a grant lists at most {MAX_GRANT_LOGINS} logins"
            )));
        }
        if req.commands.len() > MAX_GRANT_COMMANDS {
            return Err(AuthzError::InvalidArgument(format!(
                "a grant lists at most {MAX_GRANT_COMMANDS} commands"
            )));
        }
        let mut commands: Vec<String> = Vec::with_capacity(req.commands.len());
        for command in req.commands {
            validate::grant_command(&command)?;
            if !commands.contains(&command) {
                commands.push(command);
            }
        }
        Ok(Self {
            principal_kind: principal_kind(req.principal_kind)?,
            principal: req.principal,
            target: req.target,
            logins,
            commands,
            node_group: req.node_group,
        })
    }
}

impl TryFrom<pb::RevokeRequest> for GrantChange {
    type Error = AuthzError;

    fn try_from(req: pb::RevokeRequest) -> Result<Self> {
        Ok(Self {
            principal_kind: principal_kind(req.principal_kind)?,
            principal: req.principal,
            target: req.target,
            logins: Vec::new(),
            commands: Vec::new(),
            node_group: req.node_group,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_needs_exactly_one_subject() {
        let req = |user_id: &str, username: &str| pb::AuthorizeRequest {
            user_id: user_id.into(),
            username: username.into(),
            target: "web".into(),
            action: "ssh".into(),
            client_ip: None,
            ..Default::default()
        };
        let query = AccessQuery::try_from(req("u1", "")).ok();
        assert_eq!(query.map(|q| q.subject), Some(Subject::Id("u1".into())));
        let query = AccessQuery::try_from(req("", "alice")).ok();
        assert_eq!(
            query.map(|q| q.subject),
            Some(Subject::Name("alice".into()))
        );
        assert!(AccessQuery::try_from(req("u1", "alice")).is_err());
        assert!(AccessQuery::try_from(req("", "")).is_err());
    }

    #[test]
    fn grants_name_a_user_or_a_group() {
        let req = |kind: pb::PrincipalKind| pb::GrantRequest {
            principal_kind: kind.into(),
            principal: "ops".into(),
            target: "db".into(),
            ..Default::default()
        };
        let change = GrantChange::try_from(req(pb::PrincipalKind::Group)).ok();
        assert_eq!(change.map(|c| c.principal_kind), Some(PrincipalKind::Group));
        assert!(GrantChange::try_from(req(pb::PrincipalKind::Unspecified)).is_err());
    }

    #[test]
    fn grant_logins_are_account_names_each_once() {
        let req = |logins: &[&str]| pb::GrantRequest {
            principal_kind: pb::PrincipalKind::User.into(),
            principal: "alice".into(),
            target: "db".into(),
            logins: logins.iter().map(|l| l.to_string()).collect(),
            ..Default::default()
        };
        let change = GrantChange::try_from(req(&["deploy", "root", "deploy"])).ok();
        assert_eq!(
            change.map(|c| c.logins),
            Some(vec!["deploy".into(), "root".into()])
        );
        for bad in ["", "-root", "ro ot", "a,b", "root@x", &"r".repeat(33)] {
            assert!(GrantChange::try_from(req(&[bad])).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("u{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(GrantChange::try_from(req(&many)).is_err());
    }
}
