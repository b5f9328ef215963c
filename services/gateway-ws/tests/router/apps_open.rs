//! `GET /api/apps/open` with the node's allowed ports known (its agent reports ALLOWED_PORTS in
//! its heartbeat stats): a port the agent would refuse gets a page that names the allowed ones
//! and the fix, instead of a redirect to an app host that can only answer 502.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use phirepass_proto::authz::CreateNodeTokenRequest;
use phirepass_proto::registry::{AllowedPorts, ClaimNodeRequest, NodePresence, NodeStats};

use crate::common::{Gateway, HOST};

fn open(node: &str, port: u16, cookie: &str) -> Request<Body> {
    Request::get(format!("/api/apps/open?node={node}&port={port}"))
        .header("host", HOST)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap()
}

async fn text(response: axum::http::Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `user`'s node `name`, online with the given allowed ports (`None`: not reported).
async fn online_node(gw: &Gateway, user: &str, name: &str, ports: Option<&[u32]>) {
    let node_id = gw
        .admin
        .clone()
        .create_node_token(CreateNodeTokenRequest {
            username: user.into(),
            node_name: name.into(),
            expires_in_secs: None,
            rotate: false,
        })
        .await
        .unwrap()
        .into_inner()
        .node_id;
    let stats = NodeStats {
        hostname: name.into(),
        allowed_ports: ports.map(|p| AllowedPorts { ports: p.to_vec() }),
        ..Default::default()
    };
    gw.state
        .registry
        .clone()
        .claim_node(ClaimNodeRequest {
            presence: Some(NodePresence {
                node_id,
                name: name.into(),
                gateway_id: gw.state.config.gateway_id.clone(),
                stats: Some(stats),
                ..Default::default()
            }),
            takeover_after_ms: 0,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_port_the_agent_does_not_allow_gets_a_page_with_the_fix() {
    let gw = Gateway::start(|_| {}).await;
    let cookie = gw.user("alice").await;
    online_node(&gw, "alice", "web-1", Some(&[8080, 3000])).await;

    let response = gw.send(open("web-1", 5432, &cookie)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = text(response).await;
    assert!(
        page.contains("node web-1 does not allow port 5432; it allows 8080, 3000")
            && page.contains("ALLOWED_PORTS=8080,3000,5432"),
        "{page}"
    );

    // An allowed port goes on to the app host.
    let response = gw.send(open("web-1", 3000, &cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.contains("3000-web-1.apps."), "{location}");
}

#[tokio::test]
async fn a_node_that_allows_no_port_says_how_to_allow_one() {
    let gw = Gateway::start(|_| {}).await;
    let cookie = gw.user("bob").await;
    online_node(&gw, "bob", "db-1", Some(&[])).await;
    let response = gw.send(open("db-1", 8080, &cookie)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = text(response).await;
    assert!(
        page.contains("node db-1 allows no ports: start its agent with ALLOWED_PORTS=8080"),
        "{page}"
    );
}

#[tokio::test]
async fn ports_unknown_leave_the_decision_to_the_agent() {
    let gw = Gateway::start(|_| {}).await;
    let cookie = gw.user("carol").await;
    online_node(&gw, "carol", "old-agent", None).await;
    let response = gw.send(open("old-agent", 8080, &cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}
