//! Checks a gateway makes before it accepts anyone: a configuration that would let one user's
//! host stand in for another's or for the dashboard, and (in production) a first user.

use std::time::Duration;

use phirepass_proto::authz::CountUsersRequest;
use tracing::{info, warn};

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::state::Authz;

/// Refuses a configuration the gateway must not run with, naming the variables to change.
pub fn check_config(config: &GatewayConfig) -> Result<(), GatewayError> {
    if config.stats_refresh_interval.is_zero() {
        return Err(GatewayError::Startup(
            "STATS_REFRESH_INTERVAL must be at least 1 second".into(),
        ));
    }
    check_domains(config).map_err(GatewayError::Startup)
}

/// Tunnel names and app hosts are chosen by users: neither domain may contain the other, and
/// the dashboard's host may lie in neither (a tunnel named after it would take its place, and a
/// page on a sub-host could set cookies the dashboard reads).
pub fn check_domains(config: &GatewayConfig) -> Result<(), String> {
    let proxy = &config.proxy;
    let tunnel = proxy.tunnel_domain.as_deref().map(|d| ("TUNNEL_DOMAIN", d));
    let apps = proxy.apps_domain.as_deref().map(|d| ("APPS_DOMAIN", d));
    if let (Some((_, t)), Some((_, a))) = (tunnel, apps) {
        if t == a {
            return Err(format!(
                "TUNNEL_DOMAIN and APPS_DOMAIN are both {t:?}: tunnels would shadow every app \
                 host; give each its own domain (tunnel.example.com, apps.example.com)"
            ));
        }
        for ((inner_var, inner), (outer_var, outer)) in [
            (("TUNNEL_DOMAIN", t), ("APPS_DOMAIN", a)),
            (("APPS_DOMAIN", a), ("TUNNEL_DOMAIN", t)),
        ] {
            if under(inner, outer) {
                return Err(format!(
                    "{inner_var}={inner} lies under {outer_var}={outer}: names in one would \
                     be taken for the other; give each its own domain, neither under the other"
                ));
            }
        }
    }
    let dashboards = proxy.main_origin.iter().map(|o| ("PROXY_MAIN_ORIGIN", o));
    let allowed = config
        .allowed_origins
        .iter()
        .map(|o| ("ACCESS_CONTROL_ALLOW_ORIGIN", o));
    for (var, origin) in dashboards.chain(allowed) {
        let Some(host) = origin_host(origin) else {
            continue;
        };
        for (domain_var, domain) in tunnel.into_iter().chain(apps) {
            if host == domain || under(&host, domain) {
                return Err(format!(
                    "the dashboard's host {host} ({var}={origin}) lies in {domain_var}={domain}: \
                     a user's tunnel or app host could take its name or set its cookies; serve \
                     the dashboard outside {domain_var} (phirepass.example.com with \
                     tunnel.example.com)"
                ));
            }
        }
    }
    Ok(())
}

/// `true` when `host` is a strict sub-domain of `domain`.
fn under(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain)
        .is_some_and(|rest| rest.ends_with('.'))
}

/// The lower-case host of `scheme://host[:port][/...]`, without brackets or port.
fn origin_host(origin: &str) -> Option<String> {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// authz may start after the gateway (compose, systemd): wait this long for it to answer.
const AUTHZ_WAIT: Duration = Duration::from_secs(30);

/// A production edge with no users would be an open door for whoever registers first: refuse
/// to start, and say how to create the first user. With `first_run_setup` the operator has
/// chosen the `/setup` page instead, which only the holder of authz's setup code can use.
pub async fn require_users(authz: &Authz, first_run_setup: bool) -> Result<(), GatewayError> {
    let deadline = tokio::time::Instant::now() + AUTHZ_WAIT;
    let mut delay = Duration::from_millis(200);
    let count = loop {
        match authz.clone().count_users(CountUsersRequest {}).await {
            Ok(reply) => break reply.into_inner().count,
            Err(status) if tokio::time::Instant::now() < deadline => {
                info!(code = ?status.code(), "waiting for authz");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            Err(status) => {
                return Err(GatewayError::Startup(format!(
                    "authz did not answer within {}s: {}",
                    AUTHZ_WAIT.as_secs(),
                    status.message()
                )));
            }
        }
    };
    if count == 0 && first_run_setup {
        warn!("no users exist yet: serving /setup, which needs the setup code authz logged");
    } else if count == 0 {
        warn!("refusing to start: no users exist");
        return Err(GatewayError::NoUsers);
    }
    Ok(())
}

#[cfg(test)]
#[path = "startup_tests.rs"]
mod tests;
