//! `Strict-Transport-Security` on every response of a production gateway served over HTTPS
//! (its own TLS listener, or a TLS proxy with `PROXY_PUBLIC_SCHEME=https`; browsers ignore the
//! header on plain http). One year, so a browser that once saw the site never speaks plain
//! http to it again, even when someone on the path offers it.
//!
//! `includeSubDomains` where every name below the host is the gateway's own: tunnel and app
//! hosts (and their domains' apex), and the dashboard's host when a tunnel or app domain lies
//! below it (then a first visit to a tunnel is already https). `HSTS_INCLUDE_SUBDOMAINS`
//! overrides the dashboard's case, for a host whose other sub-domains are not served over https.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{HOST, STRICT_TRANSPORT_SECURITY};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{AppMode, GatewayConfig};
use crate::state::AppState;

const ONE_YEAR: &str = "max-age=31536000";
const ONE_YEAR_SUBDOMAINS: &str = "max-age=31536000; includeSubDomains";

pub async fn hsts(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let value = value(&state.config, request.headers());
    let mut response = next.run(request).await;
    if let Some(value) = value {
        response
            .headers_mut()
            .insert(STRICT_TRANSPORT_SECURITY, value);
    }
    response
}

/// The header for a request with these headers, `None` when none is sent.
pub fn value(config: &GatewayConfig, headers: &HeaderMap) -> Option<HeaderValue> {
    if config.mode != AppMode::Production || !config.proxy.secure() {
        return None;
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| crate::proxy::host::normalize(h).ok());
    let subdomains = host.is_some_and(|h| include_subdomains(config, &h));
    Some(HeaderValue::from_static(if subdomains {
        ONE_YEAR_SUBDOMAINS
    } else {
        ONE_YEAR
    }))
}

fn include_subdomains(config: &GatewayConfig, host: &str) -> bool {
    let domains = [&config.proxy.tunnel_domain, &config.proxy.apps_domain];
    let domains = domains.into_iter().flatten();
    // Names users pick under the gateway's own domains: everything below is served by it.
    if domains.clone().any(|d| host == d || under(host, d)) {
        return true;
    }
    config
        .hsts_include_subdomains
        .unwrap_or_else(|| domains.clone().any(|d| under(d, host)))
}

fn under(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain)
        .is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(mode: AppMode, scheme: &str) -> GatewayConfig {
        let mut c =
            GatewayConfig::local(String::new(), String::new(), crate::config::test_identity());
        c.mode = mode;
        c.proxy.public_scheme = scheme.into();
        c.proxy.tunnel_domain = Some("tunnel.phirepass.example.com".into());
        c.proxy.apps_domain = Some("apps.example.net".into());
        c
    }

    fn for_host(config: &GatewayConfig, host: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_str(host).unwrap());
        value(config, &h).map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn only_production_over_https() {
        let dev = config(AppMode::Development, "https");
        assert_eq!(for_host(&dev, "phirepass.example.com"), None);
        let plain = config(AppMode::Production, "http");
        assert_eq!(for_host(&plain, "phirepass.example.com"), None);
        let prod = config(AppMode::Production, "https");
        assert!(
            for_host(&prod, "other.example.org")
                .unwrap()
                .starts_with(ONE_YEAR)
        );
        assert_eq!(value(&prod, &HeaderMap::new()).unwrap(), ONE_YEAR);
    }

    #[test]
    fn subdomains_where_every_name_below_is_ours() {
        let mut c = config(AppMode::Production, "https");
        let with = Some(ONE_YEAR_SUBDOMAINS.to_string());
        let without = Some(ONE_YEAR.to_string());
        assert_eq!(for_host(&c, "web.tunnel.phirepass.example.com"), with);
        assert_eq!(for_host(&c, "3000-n1.apps.example.net:8443"), with);
        assert_eq!(for_host(&c, "apps.example.net"), with);
        // The tunnel domain lies below the dashboard's host: its first visit is https too.
        assert_eq!(for_host(&c, "phirepass.example.com"), with);
        // Nothing of ours below: unrelated sub-domains are left alone.
        assert_eq!(for_host(&c, "gw.example.org"), without);
        assert_eq!(for_host(&c, "example.net.evil"), without);
        c.hsts_include_subdomains = Some(false);
        assert_eq!(for_host(&c, "phirepass.example.com"), without);
        assert_eq!(for_host(&c, "web.tunnel.phirepass.example.com"), with);
        c.hsts_include_subdomains = Some(true);
        assert_eq!(for_host(&c, "gw.example.org"), with);
    }
}
