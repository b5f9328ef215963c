//! Issue #14 findings 8 and 11: `serve` refuses a domain layout where a user's host could stand
//! in for another's or for the dashboard, and a zero stats interval, naming the variables.

use std::time::Duration;

use crate::common::Gateway;

async fn refusal(tweak: impl FnOnce(&mut phirepass_gateway_ws::GatewayConfig)) -> String {
    let gateway = Gateway::start(tweak).await;
    let served = gateway.serve().await;
    let result = tokio::time::timeout(Duration::from_secs(10), served.done)
        .await
        .expect("serve neither refused nor stopped")
        .unwrap();
    result.expect_err("serve started").to_string()
}

#[tokio::test]
async fn serve_refuses_overlapping_domains_and_a_dashboard_under_them() {
    let err = refusal(|c| {
        c.proxy.tunnel_domain = Some("example.test".into());
        c.proxy.apps_domain = Some("example.test".into());
    })
    .await;
    assert!(
        err.contains("TUNNEL_DOMAIN") && err.contains("APPS_DOMAIN"),
        "{err}"
    );

    let err = refusal(|c| {
        c.proxy.tunnel_domain = Some("example.test".into());
        c.proxy.apps_domain = Some("apps.example.test".into());
    })
    .await;
    assert!(err.contains("lies under TUNNEL_DOMAIN"), "{err}");

    let err = refusal(|c| {
        c.proxy.tunnel_domain = Some("tunnel.example.test".into());
        c.proxy.main_origin = Some("https://phirepass.tunnel.example.test".into());
    })
    .await;
    assert!(
        err.contains("PROXY_MAIN_ORIGIN") && err.contains("TUNNEL_DOMAIN"),
        "{err}"
    );
}

#[tokio::test]
async fn serve_refuses_a_zero_stats_interval() {
    let err = refusal(|c| c.stats_refresh_interval = Duration::ZERO).await;
    assert!(err.contains("STATS_REFRESH_INTERVAL"), "{err}");
}
