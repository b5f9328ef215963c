//! Issue #9 finding 2 and session fixation, over raw HTTP against the real stack. A tunnel or
//! app upstream may not plant cookies through the gateway (Set-Cookie is judged on its bytes:
//! our names in any spelling, nameless cookies, bytes that are not visible ASCII are dropped,
//! `Domain` is stripped); a plain `pp_session` tossed onto the dashboard from a sibling host is
//! never read where the `__Host-` cookie is expected, so it cannot make `/api/device/approve`
//! act as the attacker; and logging in always mints a fresh session and ends the one the
//! browser carried in. The same attack from a real Chromium page is in the web suite.

use std::net::SocketAddr;
use std::time::Duration;

use phirepass_testkit::browser::{HttpReply, http, login};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::http_proxy::{ProxyCluster, start_agent_with_ports};

const ALICE: (&str, &str) = ("alice", "alice-Password-1");
const BOB: (&str, &str) = ("bob", "bob-Password-22");

/// What a hostile upstream answers to every request: cookies for the dashboard and for other
/// hosts, in every spelling the gateway must catch, and two it must let through.
const PLANTING: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: text/plain\r\n\
Content-Length: 7\r\n\
Set-Cookie: pp_session=planted; Domain=localhost; Path=/api/device\r\n\
Set-Cookie: __Host-pp_session=planted; Path=/; Secure\r\n\
Set-Cookie: __host-phirepass_app=planted; Path=/; Secure\r\n\
Set-Cookie: __phirepass_app=planted; Domain=apps.localhost; Path=/\r\n\
Set-Cookie: =pp_session=nameless; Path=/\r\n\
Set-Cookie: raw=\xff\xfe; Path=/\r\n\
Set-Cookie: tossed=1; Domain=localhost; Path=/\r\n\
Set-Cookie: theirs=1; Path=/; HttpOnly\r\n\
Connection: close\r\n\
\r\n\
planted";

/// A raw upstream answering [`PLANTING`] to every request.
async fn planting_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(PLANTING).await;
            });
        }
    });
    addr
}

/// `GET /` on `host` through the gateway at `gw`; the `Set-Cookie` lines of the answer, raw.
async fn set_cookies(gw: &str, host: &str, cookie: Option<&str>) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(gw).await.unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n{cookie}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = &out[..end];
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(head)
    );
    assert!(
        out.ends_with(b"planted"),
        "the upstream's body came through"
    );
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| l.len() > 11 && l[..11].eq_ignore_ascii_case(b"set-cookie:"))
        .map(|l| l[11..].trim_ascii().to_vec())
        .collect()
}

fn only_the_apps_own(lines: &[Vec<u8>]) {
    let text: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into())
        .collect();
    assert_eq!(
        text,
        ["tossed=1; Path=/", "theirs=1; Path=/; HttpOnly"],
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upstreams_cannot_plant_cookies() {
    let users = [ALICE];
    let cluster = ProxyCluster::start(1, &users, Duration::from_secs(900)).await;
    let gw = cluster.gateways[0].addr.clone();
    let port = gw.rsplit(':').next().unwrap().to_string();
    let upstream = planting_upstream().await;

    // A public tunnel (no cookie of ours needed).
    let _tunnel = cluster.publish_tunnel("planter", upstream).await;
    let host = format!("planter.tunnel.localhost:{port}");
    only_the_apps_own(&set_cookies(&gw, &host, None).await);

    // An agent's port, reached with a real app token.
    let node_token = cluster.node_token(ALICE.0, "node-a").await;
    let _agent = start_agent_with_ports(&gw, &node_token, &[upstream.port()]);
    cluster.wait_node_online("node-a").await;
    let session = login(&gw, ALICE.0, ALICE.1).await.unwrap();
    let open = http(
        &gw,
        "GET",
        &format!("/api/apps/open?node=node-a&port={}", upstream.port()),
        &[("authorization", &format!("Bearer {session}"))],
        "",
    )
    .await
    .unwrap();
    assert_eq!(open.status, 303, "{}", open.body);
    let token = header(&open, "location")
        .split("token=")
        .nth(1)
        .unwrap()
        .to_string();
    let host = format!("{}-node-a.apps.localhost:{port}", upstream.port());
    let cookie = format!("__Host-phirepass_app={token}");
    only_the_apps_own(&set_cookies(&gw, &host, Some(&cookie)).await);
}

fn header<'a>(reply: &'a HttpReply, name: &str) -> &'a str {
    reply
        .headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {}", reply.headers))
}

async fn me(gw: &str, cookie: &str) -> (u16, Value) {
    let r = http(gw, "GET", "/api/auth/me", &[("cookie", cookie)], "")
        .await
        .unwrap();
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

async fn post(gw: &str, path: &str, cookie: &str, body: Value) -> (u16, Value) {
    let origin = format!("http://{gw}");
    let headers = [("cookie", cookie), ("origin", origin.as_str())];
    let r = http(gw, "POST", path, &headers, &body.to_string())
        .await
        .unwrap();
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

async fn users() -> ProxyCluster {
    ProxyCluster::start(1, &[ALICE, BOB], Duration::from_secs(900)).await
}

/// The finding's attack: the attacker's session cookie, tossed from a sibling host with a
/// parent `Domain` and a longer `Path`, arrives first on the victim's approval.
#[tokio::test(flavor = "multi_thread")]
async fn a_tossed_session_cookie_never_acts_for_the_victim() {
    let cluster = users().await;
    let gw = cluster.gateways[0].addr.clone();
    let victim = login(&gw, ALICE.0, ALICE.1).await.unwrap();
    let attacker = login(&gw, BOB.0, BOB.1).await.unwrap();
    let tossed = format!("pp_session={attacker}; __Host-pp_session={victim}");

    let (status, user) = me(&gw, &tossed).await;
    assert_eq!((status, user["username"].as_str()), (200, Some(ALICE.0)));

    // The victim's agent asks for a code; the victim approves it with the tossed cookie along.
    let (status, started) = post(
        &gw,
        "/api/device/start",
        "",
        json!({"kind": "agent", "hostname": "victim-box"}),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let code = started["user_code"].as_str().unwrap();
    let review = json!({"user_code": code, "node_name": "victim-box"});
    let (status, inspected) = post(&gw, "/api/device/inspect", &tossed, review).await;
    assert_eq!(status, 200, "{inspected}");
    let approve = json!({
        "user_code": code,
        "node_name": "victim-box",
        "device_id": inspected["device_id"],
    });
    let (status, approved) = post(&gw, "/api/device/approve", &tossed, approve).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["node"]["username"], ALICE.0, "{approved}");

    // Two copies of the prefixed name (however they got there): no session at all.
    let twice = format!("__Host-pp_session={attacker}; __Host-pp_session={victim}");
    assert_eq!(me(&gw, &twice).await.0, 401);
    let r = http(
        &gw,
        "GET",
        "/api/auth/me",
        &[
            ("cookie", &format!("__Host-pp_session={attacker}")),
            ("cookie", &format!("__Host-pp_session={victim}")),
        ],
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401);
}

/// Logs in carrying `cookie`; the token issued (body and Set-Cookie agree).
async fn login_carrying(gw: &str, (user, password): (&str, &str), cookie: &str) -> String {
    let body = json!({"username": user, "password": password}).to_string();
    let r = http(gw, "POST", "/api/auth/login", &[("cookie", cookie)], &body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let token = serde_json::from_str::<Value>(&r.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let set = header(&r, "set-cookie");
    assert!(
        set.starts_with(&format!("__Host-pp_session={token};")),
        "{set}"
    );
    token
}

#[tokio::test(flavor = "multi_thread")]
async fn login_mints_a_fresh_session_and_ends_the_one_it_was_given() {
    let cluster = users().await;
    let gw = cluster.gateways[0].addr.clone();
    let cookie = |t: &str| format!("__Host-pp_session={t}");

    // An arbitrary value chosen by an attacker is never adopted.
    let chosen = "0123456789abcdef0123456789abcdef";
    let issued = login_carrying(&gw, ALICE, &cookie(chosen)).await;
    assert_ne!(issued, chosen);
    assert_eq!(me(&gw, &cookie(chosen)).await.0, 401);

    // A session that was valid before the login is not the one after it, and is over.
    let before = login(&gw, ALICE.0, ALICE.1).await.unwrap();
    assert_eq!(me(&gw, &cookie(&before)).await.0, 200);
    let after = login_carrying(&gw, ALICE, &cookie(&before)).await;
    assert_ne!(after, before);
    assert_eq!(
        me(&gw, &cookie(&before)).await.0,
        401,
        "the old session still works"
    );
    let (status, user) = me(&gw, &cookie(&after)).await;
    assert_eq!((status, user["username"].as_str()), (200, Some(ALICE.0)));

    // The attacker's own valid session planted before the victim logs in: the victim gets
    // hers, and the planted one ends.
    let planted = login(&gw, BOB.0, BOB.1).await.unwrap();
    let victims = login_carrying(&gw, ALICE, &cookie(&planted)).await;
    assert_ne!(victims, planted);
    assert_eq!(me(&gw, &cookie(&planted)).await.0, 401);
    assert_eq!(me(&gw, &cookie(&victims)).await.1["username"], ALICE.0);
}
