//! The HTML pages. One shell serves every page but the terminal; the script picks the page by
//! path. Before serving, the gateway sends a fresh instance to `/setup` and visitors without a
//! session to `/login`, so no page flashes content it should not.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use phirepass_proto::authz::SetupStatusRequest;
use tracing::debug;

use crate::accounts::auth::require_user;
use crate::http::assets::{INDEX_HTML, TERMINAL_HTML};
use crate::state::AppState;

/// Scripts and styles from this site only (xterm.js sets inline styles, hence 'unsafe-inline' for
/// styles, never for scripts); no framing, no plugins, forms post here only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Pages anyone may open; every other page needs a session.
fn is_public(path: &str) -> bool {
    path == "/login" || path == "/setup" || path.starts_with("/join/")
}

pub async fn page(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let headers = request.headers();
    let needs_setup = needs_setup(&state).await;
    if needs_setup && path != "/setup" {
        return redirect("/setup");
    }
    if !needs_setup && path == "/setup" {
        return redirect("/login");
    }
    if !is_public(&path) && require_user(&state, headers).await.is_err() {
        let mut next = path.clone();
        if let Some(q) = query {
            next = format!("{next}?{q}");
        }
        return redirect(&format!("/login?next={}", encode_component(&next)));
    }
    let body = if path.starts_with("/terminal/") {
        TERMINAL_HTML
    } else {
        INDEX_HTML
    };
    let mut response = body.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Whether the instance still has no user. Once it has one this is remembered: users are
/// only ever added through authz, and the last one cannot vanish without an operator.
async fn needs_setup(state: &AppState) -> bool {
    if state.setup_done.load(Ordering::Relaxed) {
        return false;
    }
    match state
        .authz
        .clone()
        .setup_status(SetupStatusRequest {})
        .await
    {
        Ok(reply) => {
            let needs = reply.into_inner().needs_setup;
            if !needs {
                state.setup_done.store(true, Ordering::Relaxed);
            }
            needs
        }
        Err(status) => {
            // authz down: let the page load; its API calls will say what is wrong.
            debug!(code = ?status.code(), "setup status unavailable");
            false
        }
    }
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Headers for every response: no sniffing, no framing, no referrer (invitation codes live in
/// URLs); pages get the CSP; pages and API answers (sessions, codes, tokens) are never cached.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let html = is_html(response.headers());
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if html {
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    if html || api {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_parameter_is_encoded() {
        assert_eq!(
            encode_component("/terminal/a b?x=1&y"),
            "/terminal/a%20b%3Fx%3D1%26y"
        );
    }

    #[test]
    fn public_pages() {
        assert!(is_public("/login") && is_public("/setup") && is_public("/join/abc"));
        assert!(!is_public("/") && !is_public("/admin") && !is_public("/terminal/x"));
    }
}
