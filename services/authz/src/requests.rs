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
}

impl AccessQuery {
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
        Ok(Self {
            subject,
            target: req.target,
            action: req.action,
            client_ip: req.client_ip,
        })
    }
}

/// A grant to add or take away: a user or group by name, a target by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantChange {
    pub(crate) principal_kind: PrincipalKind,
    pub(crate) principal: String,
    pub(crate) target: String,
}

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
        Ok(Self {
            principal_kind: principal_kind(req.principal_kind)?,
            principal: req.principal,
            target: req.target,
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
        };
        let change = GrantChange::try_from(req(pb::PrincipalKind::Group)).ok();
        assert_eq!(change.map(|c| c.principal_kind), Some(PrincipalKind::Group));
        assert!(GrantChange::try_from(req(pb::PrincipalKind::Unspecified)).is_err());
    }
}
