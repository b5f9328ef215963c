//! The one browser Origin rule, and the cross-site request forgery guard built on it.
//!
//! [`allowed`] guards the browser WebSocket; [`check`] every state-changing call (login, setup,
//! invitations, device approval, kicks). A browser request must come from this site (its
//! `Origin`, or a listed one) in every mode, development included: other sites' pages must not
//! drive a logged-in browser. A call riding on the session cookie must also carry a JSON body or
//! the `x-phirepass` header, which a plain cross-site form post cannot produce.
//!
//! [`app_request`] guards app hosts, where the app cookie (SameSite=Lax) rides along with any
//! same-site request: every other app host and, under a shared registrable domain, every tunnel.

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, Method};

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

/// WebSocket upgrades and unsafe methods (all but GET, HEAD and OPTIONS) on an app host must
/// come from a page of that very host: `Sec-Fetch-Site` may only be `same-origin` or `none`,
/// and `Origin` must be `<scheme>://<host as sent>` (an `http` origin only where the public
/// scheme is http). `Origin: null` (a page with `Referrer-Policy: no-referrer`) passes only with
/// `Sec-Fetch-Site: same-origin`. A request with neither header is refused too: every browser
/// sends `Origin` on these, so its absence means either a client that must then name the app
/// host itself, or a browser we cannot vouch for carrying the cookie. `Err` says why.
pub fn app_request(
    scheme: &str,
    host: &str,
    method: &Method,
    upgrade: bool,
    headers: &HeaderMap,
) -> Result<(), String> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if safe && !upgrade {
        return Ok(());
    }
    let what = if upgrade {
        "WebSocket".to_string()
    } else {
        method.to_string()
    };
    let own = format!("{scheme}://{host}");
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let fetch_site = header("sec-fetch-site");
    if let Some(site) = fetch_site
        && site != "same-origin"
        && site != "none"
    {
        return Err(format!(
            "cross-origin {what} refused: the browser says it comes from a {site} page; only \
             pages of {own} may send it"
        ));
    }
    match header(ORIGIN.as_str()) {
        Some("null") if fetch_site == Some("same-origin") => Ok(()),
        Some(origin) if same_origin(origin, scheme, host) => Ok(()),
        Some(origin) => Err(format!(
            "cross-origin {what} refused: Origin {origin} is not {own}; only pages of {own} may \
             send it"
        )),
        None if fetch_site.is_some() => Ok(()),
        None => Err(format!(
            "{what} without Origin refused: browsers always send it here; a script must send \
             Origin: {own}"
        )),
    }
}

/// `origin` is `scheme://host` for this very host; https is the same site over TLS.
fn same_origin(origin: &str, scheme: &str, host: &str) -> bool {
    let Some((their_scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let scheme_ok = their_scheme.eq_ignore_ascii_case(scheme)
        || (scheme == "http" && their_scheme.eq_ignore_ascii_case("https"));
    scheme_ok && !host.is_empty() && rest.eq_ignore_ascii_case(host)
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

    fn config() -> GatewayConfig {
        GatewayConfig::local(String::new(), String::new(), crate::config::test_identity())
    }

    fn prod(origins: &str) -> GatewayConfig {
        let mut c =
            GatewayConfig::local(String::new(), String::new(), crate::config::test_identity());
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
    fn app_hosts_take_unsafe_requests_and_websockets_only_from_themselves() {
        let host = "3000-web.apps.example.com";
        let check = |method: Method, upgrade: bool, pairs: &[(&'static str, &'static str)]| {
            app_request("https", host, &method, upgrade, &headers(pairs))
        };
        let own = ("origin", "https://3000-web.apps.example.com");
        // Safe methods pass whatever sent them.
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(check(m, false, &[("origin", "https://evil.example.com")]).is_ok());
        }
        // Unsafe methods and upgrades: the app host's own pages only.
        for (m, up) in [
            (Method::POST, false),
            (Method::DELETE, false),
            (Method::PUT, false),
            (Method::GET, true),
        ] {
            assert!(check(m.clone(), up, &[own]).is_ok());
            assert!(check(m.clone(), up, &[own, ("sec-fetch-site", "same-origin")]).is_ok());
            for bad in [
                &[("origin", "https://8080-other.apps.example.com")][..],
                &[("origin", "https://evil.tunnel.example.com")],
                &[("origin", "http://3000-web.apps.example.com")],
                &[("origin", "https://3000-web.apps.example.com.evil.com")],
                &[("origin", "https://3000-web.apps.example.com:444")],
                &[("origin", "null")],
                &[own, ("sec-fetch-site", "same-site")],
                &[own, ("sec-fetch-site", "cross-site")],
                &[("sec-fetch-site", "same-site")],
                &[("sec-fetch-site", "cross-site")],
                &[("sec-fetch-site", "bogus")],
                &[],
            ] {
                let refused = check(m.clone(), up, bad);
                assert!(refused.is_err(), "{m} upgrade={up} {bad:?} passed");
            }
            // No Origin but the browser vouches for the page's site; null from a same-origin page.
            assert!(check(m.clone(), up, &[("sec-fetch-site", "same-origin")]).is_ok());
            assert!(
                check(
                    m.clone(),
                    up,
                    &[("origin", "null"), ("sec-fetch-site", "same-origin")]
                )
                .is_ok()
            );
        }
        // Plain http deployments also take their host's https origin, never the reverse.
        let h = headers(&[("origin", "https://3000-web.apps.localhost:8080")]);
        assert!(
            app_request(
                "http",
                "3000-web.apps.localhost:8080",
                &Method::POST,
                false,
                &h
            )
            .is_ok()
        );
        let msg = check(Method::POST, false, &[("origin", "https://x.example.com")]).unwrap_err();
        assert!(
            msg.contains("Origin https://x.example.com is not https://3000-web.apps.example.com"),
            "{msg}"
        );
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
