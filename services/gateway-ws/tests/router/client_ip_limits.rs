//! Issue #14 finding 4: behind a trusted proxy the client is the rightmost address it did not
//! vouch for, so rotating the leftmost `X-Forwarded-For` entries neither escapes the per-IP
//! login limit nor, typed as someone else's address, locks that address out.

use axum::http::StatusCode;
use phirepass_gateway_ws::IpSource;
use phirepass_gateway_ws::config::TrustedProxies;

use crate::common::{Gateway, login};

/// More wrong logins than authz allows one address (50 a minute by default).
const ATTEMPTS: usize = 120;

async fn wrong_login(gateway: &Gateway, forwarded_for: &str, username: &str) -> StatusCode {
    let mut request = login(username, "not-the-password-at-all");
    request
        .headers_mut()
        .insert("x-forwarded-for", forwarded_for.parse().unwrap());
    gateway.send(request).await.status()
}

#[tokio::test]
async fn rotating_x_forwarded_for_does_not_escape_the_per_ip_login_limit() {
    // The test's peer (127.0.0.1) is the proxy; it appended 203.0.113.9, the real client.
    let by_count = TrustedProxies::Count(1);
    let by_range = TrustedProxies::ranges("127.0.0.1, 10.0.0.0/8").unwrap();
    for trusted in [by_count, by_range] {
        let gateway = Gateway::start(|c| {
            c.ip_source = IpSource::XForwardedFor;
            c.trusted_proxies = trusted.clone();
        })
        .await;
        let mut limited = false;
        for i in 0..ATTEMPTS {
            // A fresh spoofed address and a fresh (unknown) username each time: only the
            // client's own address can be what is counted.
            let spoofed = format!("198.51.100.{}, 203.0.113.9", i % 250 + 1);
            let status = wrong_login(&gateway, &spoofed, &format!("nobody{i}")).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                limited = true;
                break;
            }
            assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
        }
        assert!(
            limited,
            "{trusted:?}: {ATTEMPTS} wrong logins from one client with rotated \
             X-Forwarded-For were never limited"
        );
        let status = wrong_login(&gateway, "192.0.2.200, 203.0.113.9", "somebody").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{trusted:?}");
        // Another client behind the same proxy is not locked out by the first one.
        let status = wrong_login(&gateway, "203.0.113.9, 203.0.113.10", "somebody").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{trusted:?}");
    }
}

#[tokio::test]
async fn without_trusted_proxies_the_header_is_not_believed() {
    // The default: the socket's peer is the client whatever it writes.
    let gateway = Gateway::start(|_| {}).await;
    let mut limited = false;
    for i in 0..ATTEMPTS {
        let spoofed = format!("198.51.100.{}", i % 250 + 1);
        if wrong_login(&gateway, &spoofed, &format!("nobody{i}")).await
            == StatusCode::TOO_MANY_REQUESTS
        {
            limited = true;
            break;
        }
    }
    assert!(limited, "rotated X-Forwarded-For escaped the per-IP limit");
}
