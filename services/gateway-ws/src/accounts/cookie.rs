//! The session cookie: its name, how the gateway sets it, and how a request's token is read.

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};

use crate::config::AppMode;

pub const SESSION_COOKIE: &str = "pp_session";

/// The session token from the cookie or a bearer header; never from the URL.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    // A second copy may have been planted by a sibling host: no session then.
    phirepass_parse::cookie::get(headers, SESSION_COOKIE)
        .inspect_err(|_| tracing::debug!(cookie = SESSION_COOKIE, "cookie sent twice, ignored"))
        .ok()
        .flatten()
}

pub fn session_cookie(token: &str, max_age: i64, mode: AppMode) -> HeaderValue {
    let secure = if mode == AppMode::Production {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    );
    // Tokens are hex, so the header value is always valid; fall back to clearing the cookie.
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("pp_session=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use axum::http::header::COOKIE;

    use super::*;

    #[test]
    fn token_from_cookie_or_bearer() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=b; pp_session=abc; c=d"));
        assert_eq!(session_token(&h).as_deref(), Some("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert_eq!(session_token(&h).as_deref(), Some("xyz"));
        assert_eq!(session_token(&HeaderMap::new()), None);
    }

    #[test]
    fn a_session_cookie_sent_twice_is_no_session() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("pp_session=planted"));
        h.append(COOKIE, HeaderValue::from_static("pp_session=abc"));
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn production_cookie_is_secure() {
        let c = session_cookie("t", 10, AppMode::Production);
        let s = c.to_str().unwrap_or_default();
        assert!(s.contains("HttpOnly") && s.contains("Secure") && s.contains("SameSite=Strict"));
    }
}
