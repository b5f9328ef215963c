//! Who may call which Registry RPC (issue #8): gateway-ws reports agent nodes and browser
//! sessions and reads presence for its dashboard; ssh-edge reports its sessions and `ssh -R`
//! tunnels and looks nodes and tunnels up to open streams. Listing and kicking tunnels is
//! also the admin CLI's, with an API token. docs/security.md has the table.

use phirepass_pki::ServiceKind::{self, GatewayWs, SshEdge};
use phirepass_runtime::grpc::{Policy, Rule};

const GW: &[ServiceKind] = &[GatewayWs];
const EDGE: &[ServiceKind] = &[SshEdge];
const EDGES: &[ServiceKind] = &[GatewayWs, SshEdge];

/// The allowlist [`crate::serve`] enforces.
pub const POLICY: Policy = Policy {
    service: crate::SERVICE_NAME,
    rules: &[
        // No service calls NodeConnected any more (ClaimNode replaced it): refused to all.
        Rule::services("NodeConnected", &[]),
        Rule::services("ClaimNode", GW),
        Rule::services("NodeHeartbeat", GW),
        Rule::services("NodeDisconnected", GW),
        Rule::services("ListNodes", GW),
        Rule::services("ListSessions", GW),
        Rule::services("GetNode", EDGES),
        Rule::services("SessionOpened", EDGES),
        Rule::services("SessionHeartbeat", EDGES),
        Rule::services("SessionClosed", EDGES),
        Rule::services("GetTunnel", EDGES),
        Rule::services("TunnelOpened", EDGE),
        Rule::services("TunnelHeartbeat", EDGE),
        Rule::services("TunnelClosed", EDGE),
        Rule::admin("ListTunnels", GW),
        Rule::admin("KickTunnel", &[]),
    ],
};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_exactly_one_row() {
        let proto = include_str!("../../../proto/registry.proto");
        assert_eq!(POLICY.mismatches_with_proto(proto), Vec::<String>::new());
    }
}
