//! "Own data" listings for a non-admin's API token: her tokens, nodes,
//! direct grants and tunnel names, never anybody else's. Admins and the
//! service token pass through unchanged. An absent filter becomes "mine";
//! a filter naming somebody else is refused, so a non-admin's token cannot
//! enumerate other users by probing.

use phirepass_proto::authz as pb;

use crate::actor::own_data_only;
use crate::error::{AuthzError, Result};

const NOT_YOURS: &str = "the API token's user is not an admin: it may only list her own tokens, nodes, grants and tunnel names (leave the user filter empty or name yourself)";

/// ListTokens' `username` filter, held to the caller's own name.
pub(crate) fn username(filter: Option<String>) -> Result<Option<String>> {
    let Some((_, own)) = own_data_only() else {
        return Ok(filter);
    };
    match filter {
        Some(name) if name != own => Err(AuthzError::Forbidden(NOT_YOURS)),
        _ => Ok(Some(own)),
    }
}

/// ListNodes' and ListTunnelNames' `user_id` filter, held to the caller's id.
pub(crate) fn user_id(filter: Option<String>) -> Result<Option<String>> {
    let Some((own, _)) = own_data_only() else {
        return Ok(filter);
    };
    match filter {
        Some(id) if id != own => Err(AuthzError::Forbidden(NOT_YOURS)),
        _ => Ok(Some(own)),
    }
}

/// ListGrants held to the grants naming the caller herself (a target
/// filter still applies); group grants are an admin's view.
pub(crate) fn grants(mut req: pb::ListGrantsRequest) -> Result<pb::ListGrantsRequest> {
    let Some((_, own)) = own_data_only() else {
        return Ok(req);
    };
    let user = pb::PrincipalKind::User as i32;
    match (req.principal_kind, req.principal.as_deref()) {
        (None, None) => {}
        (Some(kind), Some(name)) if kind == user && name == own => {}
        _ => return Err(AuthzError::Forbidden(NOT_YOURS)),
    }
    req.principal_kind = Some(user);
    req.principal = Some(own);
    Ok(req)
}
