//! Who may call which Authz RPC (issue #8): the service kinds whose certificate lets them in,
//! and whether an admin client's API token may instead (the handler then checks its scope and
//! its user's role, see [`crate::auth`]). Built from the calls the services really make; a
//! method nobody calls (or a new one not listed) is refused. docs/security.md has the table.

use phirepass_pki::ServiceKind::{self, GatewayWs, Registry, Secrets, SshEdge};
use phirepass_runtime::grpc::{Policy, Rule};

const GW: &[ServiceKind] = &[GatewayWs];
const EDGE: &[ServiceKind] = &[SshEdge];
const EDGES: &[ServiceKind] = &[GatewayWs, SshEdge];
const NONE: &[ServiceKind] = &[];

/// The allowlist [`crate::serve`] enforces.
pub const POLICY: Policy = Policy {
    service: crate::SERVICE_NAME,
    rules: &[
        // Browser logins, sessions and first-run setup: the gateway's web API.
        Rule::services("Login", GW),
        Rule::services("VerifySession", GW),
        Rule::services("Logout", GW),
        Rule::services("SetupStatus", GW),
        Rule::services("CompleteSetup", GW),
        Rule::services("InspectInvitation", GW),
        Rule::services("AcceptInvitation", GW),
        Rule::services("StartDeviceAuthorization", GW),
        Rule::services("InspectDevice", GW),
        Rule::services("ApproveDevice", GW),
        Rule::services("PollDeviceAuthorization", GW),
        Rule::services("CreateAppToken", GW),
        Rule::services("VerifyAppToken", GW),
        // Agents connect to the gateway only.
        Rule::services("VerifyNodeToken", GW),
        Rule::services("CheckTokens", GW),
        // SSH logins at the edge.
        Rule::services("VerifyPassword", EDGE),
        Rule::services("VerifyUserKey", EDGE),
        // Decisions and open tickets, asked by whichever edge opens a stream.
        Rule::services("Authorize", EDGES),
        Rule::services("ListAccessibleTargets", EDGES),
        Rule::services("IssueOpenTicket", EDGES),
        Rule::services("TicketKeys", EDGES),
        // The services that take API tokens on their own admin surface verify them here.
        Rule::services("VerifyApiToken", &[Secrets, Registry, GatewayWs]),
        // Lists the gateway's dashboard shows an admin it already checked, plus admin clients.
        Rule::admin("CountUsers", GW),
        Rule::admin("ListUsers", GW),
        Rule::admin("ListGroups", GW),
        Rule::admin("ListGroupMembers", GW),
        Rule::admin("ListNodes", GW),
        Rule::admin("ListTunnelNames", GW),
        Rule::admin("CreateInvitation", GW),
        Rule::admin("ListInvitations", GW),
        Rule::admin("RevokeInvitation", GW),
        // `ssh -R name:...` claims the name for the logged-in user.
        Rule::admin("ClaimTunnelName", EDGE),
        // Admin clients only (API token).
        Rule::admin("CreateUser", NONE),
        Rule::admin("SetUserDisabled", NONE),
        Rule::admin("SetUserAdmin", NONE),
        Rule::admin("RemoveUser", NONE),
        Rule::admin("SetPassword", NONE),
        Rule::admin("AddUserKey", NONE),
        Rule::admin("ListUserKeys", NONE),
        Rule::admin("RemoveUserKey", NONE),
        Rule::admin("CreateNodeToken", NONE),
        Rule::admin("ListTokens", NONE),
        Rule::admin("RevokeToken", NONE),
        Rule::admin("CreateApiToken", NONE),
        Rule::admin("CreateGroup", NONE),
        Rule::admin("RemoveGroup", NONE),
        Rule::admin("AddGroupMember", NONE),
        Rule::admin("RemoveGroupMember", NONE),
        Rule::admin("AddHost", NONE),
        Rule::admin("RemoveHost", NONE),
        Rule::admin("ListTargets", NONE),
        Rule::admin("Grant", NONE),
        Rule::admin("Revoke", NONE),
        Rule::admin("ListGrants", NONE),
        // Node groups (issue #10): grants on many nodes, `nodes run --group`.
        Rule::admin("AddNodeGroupMembers", NONE),
        Rule::admin("RemoveNodeGroupMembers", NONE),
        Rule::admin("RemoveNodeGroup", NONE),
        Rule::admin("ListNodeGroups", NONE),
        Rule::admin("ReleaseTunnelName", NONE),
    ],
};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every method of the proto has a row, and no row names a method that does not exist.
    #[test]
    fn every_method_has_exactly_one_row() {
        let proto = include_str!("../../../proto/authz.proto");
        assert_eq!(POLICY.mismatches_with_proto(proto), Vec::<String>::new());
    }

    #[test]
    fn admin_rights_never_come_from_a_certificate_alone() {
        for kind in ServiceKind::ALL {
            for m in [
                "CreateUser",
                "CreateApiToken",
                "Grant",
                "SetUserAdmin",
                "CreateNodeToken",
            ] {
                assert!(!POLICY.allows(kind, m), "{kind:?} {m}");
            }
        }
    }
}
