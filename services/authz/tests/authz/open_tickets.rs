//! IssueOpenTicket and TicketKeys (issue #8): a ticket only for a user allowed on the target,
//! only for that node, public only for an `sshr-` node's port 80; every ticket verifies against
//! the keys TicketKeys publishes, for exactly the open it was asked for.

use crate::common::{Harness, Options, Stack};
use phirepass_proto::authz as pb;
use phirepass_ticket::{Audience, KeySet, PublicKey, Scope, TicketTarget, TicketVerifier};
use tonic::Code;

on_both_stacks!(tickets_follow_the_access_decision,);

fn ask(user: &str, target: &str, node: &str, port: u32) -> pb::IssueOpenTicketRequest {
    pb::IssueOpenTicketRequest {
        user_id: user.into(),
        target: target.into(),
        node_id: node.into(),
        port,
        edge_id: "gw-1".into(),
        stream_id: 42,
        ..Default::default()
    }
}

async fn tickets_follow_the_access_decision(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let alice = h.create_user("alice").await;
    let bob = h.create_user("bob").await;
    let mut c = h.client();
    let node = c
        .create_node_token(pb::CreateNodeTokenRequest {
            username: "alice".into(),
            node_name: "web-1".into(),
            expires_in_secs: None,
            rotate: false,
        })
        .await
        .unwrap()
        .into_inner()
        .node_id;

    let keys = c
        .ticket_keys(pb::TicketKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.keys[0].kid, keys.current_kid);
    let set = KeySet::new(
        keys.keys
            .into_iter()
            .map(|k| PublicKey {
                kid: k.kid,
                key: k.key,
            })
            .collect(),
    )
    .unwrap();
    let verifier = TicketVerifier::new(set, Audience::Agent);

    // The owner, by id or by name: a ticket for exactly this open.
    let ticket = c
        .issue_open_ticket(ask(&alice.id, "web-1", &node, 5432))
        .await
        .unwrap()
        .into_inner()
        .ticket;
    let scope = Scope {
        node: node.clone(),
        target: TicketTarget::Port { port: 5432 },
        edge: "gw-1".into(),
        stream: 42,
    };
    let now = u64::try_from(phirepass_runtime::clock::now_millis()).unwrap();
    let claims = verifier.verify(Some(&ticket), &scope, now).unwrap();
    assert_eq!(claims.user, alice.id);
    let by_name = pb::IssueOpenTicketRequest {
        user_id: String::new(),
        username: "alice".into(),
        ..ask("", &node, &node, 0)
    };
    let ticket = c
        .issue_open_ticket(by_name)
        .await
        .unwrap()
        .into_inner()
        .ticket;
    let ssh = Scope {
        target: TicketTarget::Ssh,
        ..scope.clone()
    };
    assert_eq!(
        verifier.verify(Some(&ticket), &ssh, now).unwrap().user,
        alice.id
    );

    // Refusals: no grant, another node than the target, a public ticket for an agent node.
    let refused = |r: Result<tonic::Response<pb::IssueOpenTicketResponse>, tonic::Status>| {
        r.expect_err("refused").code()
    };
    let no_grant = c
        .issue_open_ticket(ask(&bob.id, "web-1", &node, 5432))
        .await;
    assert_eq!(refused(no_grant), Code::PermissionDenied);
    let other_node = c
        .issue_open_ticket(ask(&alice.id, "web-1", "another-node", 5432))
        .await;
    assert_eq!(refused(other_node), Code::PermissionDenied);
    let public_agent = pb::IssueOpenTicketRequest {
        public_tunnel: true,
        ..ask("", "", &node, 80)
    };
    assert_eq!(
        refused(c.issue_open_ticket(public_agent).await),
        Code::PermissionDenied
    );
    let public_other_port = pb::IssueOpenTicketRequest {
        public_tunnel: true,
        ..ask("", "", "sshr-0123456789abcdef", 8080)
    };
    assert_eq!(
        refused(c.issue_open_ticket(public_other_port).await),
        Code::PermissionDenied
    );
    let malformed = c
        .issue_open_ticket(ask(&alice.id, "web-1", &node, 70000))
        .await;
    assert_eq!(refused(malformed), Code::InvalidArgument);

    // A public HTTP tunnel: no user, and an agent would refuse it.
    let public = pb::IssueOpenTicketRequest {
        public_tunnel: true,
        ..ask("", "", "sshr-0123456789abcdef", 80)
    };
    let ticket = c
        .issue_open_ticket(public)
        .await
        .unwrap()
        .into_inner()
        .ticket;
    let claims = phirepass_ticket::peek(&ticket).unwrap();
    assert_eq!(
        (claims.user.as_str(), claims.node.as_str()),
        ("", "sshr-0123456789abcdef")
    );
    h.stop().await;
}
