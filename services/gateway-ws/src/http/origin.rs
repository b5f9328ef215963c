//! The one browser Origin rule, and the cross-site request forgery guard built on it.
//!
//! [`allowed`] guards the browser WebSocket; [`check`] every state-changing call (login, setup,
//! invitations, device approval, kicks). A browser request must come from this site (its
//! `Origin`, or a listed one) in every mode, development included: other sites' pages must not
//! drive a logged-in browser. A call riding on the session cookie must also carry a JSON body or
//! the `x-phirepass` header, which a plain cross-site form post cannot produce.

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};

use crate::config::GatewayConfig;
use crate::error::GatewayError;

/// The header the UI sends on every call; any value.
pub const CUSTOM_HEADER: &str = "x-phirepass";

pub fn check(config: &GatewayConfig, headers: &HeaderMap) -> Result<(), GatewayError> {
    if !allowed(config, headers) {
        return Err(GatewayError::ForeignOrigin);
    }
    // Bearer clients are not browsers: nothing attaches their token to someone else's request.
    let bearer = headers.contains_key(AUTHORIZATION);
    if !bearer && !is_json(headers) && !headers.contains_key(CUSTOM_HEADER) {
        return Err(GatewayError::BadRequest(
            "send a JSON body (content-type: application/json) or the x-phirepass header".into(),
        ));
    }
    Ok(())
}

/// `Origin` (browsers send it on every POST) must be the gateway's own host or a listed origin.
/// Without it, `Sec-Fetch-Site` must not say cross-site; clients that send neither are not
/// browsers and pass.
pub fn allowed(config: &GatewayConfig, headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(origin) = header(ORIGIN.as_str()) else {
        return matches!(
            header("sec-fetch-site"),
            None | Some("same-origin") | Some("none")
        );
    };
    let origin = origin.trim_end_matches('/');
    if config.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    let host = header(HOST.as_str()).unwrap_or("");
    !host.is_empty()
        && origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AppMode;
    use phirepass_runtime::grpc::ServiceToken;

    fn config() -> GatewayConfig {
        GatewayConfig::local(String::new(), String::new(), ServiceToken::new("t".into()))
    }

    fn prod(origins: &str) -> GatewayConfig {
        let mut c =
            GatewayConfig::local(String::new(), String::new(), ServiceToken::new("t".into()));
        c.mode = AppMode::Production;
        c.allowed_origins = crate::config::split_origins(origins);
        c
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_site_json_passes_even_in_development() {
        let c = config();
        let ok = headers(&[
            ("host", "gw:8080"),
            ("origin", "http://gw:8080"),
            ("content-type", "application/json"),
        ]);
        assert!(check(&c, &ok).is_ok());
        let foreign = headers(&[
            ("host", "gw:8080"),
            ("origin", "http://evil:8080"),
            ("content-type", "application/json"),
        ]);
        assert!(matches!(
            check(&c, &foreign),
            Err(GatewayError::ForeignOrigin)
        ));
    }

    #[test]
    fn cookie_requests_need_json_or_the_custom_header() {
        let c = config();
        let form = headers(&[
            ("host", "gw"),
            ("origin", "http://gw"),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        assert!(check(&c, &form).is_err());
        let custom = headers(&[
            ("host", "gw"),
            ("origin", "http://gw"),
            ("x-phirepass", "1"),
        ]);
        assert!(check(&c, &custom).is_ok());
        let bearer = headers(&[("authorization", "Bearer abc")]);
        assert!(check(&c, &bearer).is_ok());
    }

    #[test]
    fn fetch_metadata_without_origin() {
        let c = config();
        let cross = headers(&[
            ("sec-fetch-site", "cross-site"),
            ("content-type", "application/json"),
        ]);
        assert!(check(&c, &cross).is_err());
        let plain = headers(&[("content-type", "application/json")]);
        assert!(check(&c, &plain).is_ok());
    }

    #[test]
    fn production_refuses_foreign_origins() {
        let c = prod("https://app.example.com");
        assert!(allowed(
            &c,
            &headers(&[("origin", "https://app.example.com")])
        ));
        assert!(!allowed(
            &c,
            &headers(&[("origin", "https://evil.example")])
        ));
        assert!(allowed(
            &c,
            &headers(&[
                ("origin", "http://gw.local:8080"),
                ("host", "gw.local:8080")
            ])
        ));
        assert!(!allowed(
            &c,
            &headers(&[("origin", "http://evil:8080"), ("host", "gw.local:8080")])
        ));
    }
}
