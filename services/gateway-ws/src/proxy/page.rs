//! The proxy's own small HTML answers (400, 401, 403, 404, 502, 504): plain text in a page,
//! never cached, nothing from the request rendered unescaped.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::engine::Failure;

/// A page saying `message`, with an optional link (href, text).
pub fn page(status: StatusCode, message: &str, link: Option<(&str, &str)>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let link = link
        .map(|(href, text)| format!("<p><a href=\"{}\">{}</a></p>", escape(href), escape(text)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{code} {title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{code} {title}</h1><p>{msg}</p>{link}\
         <hr><p><small>phirepass</small></p></body></html>\n",
        code = status.as_u16(),
        msg = escape(message),
    );
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub fn bad_host() -> Response {
    page(StatusCode::BAD_REQUEST, "invalid Host header", None)
}

pub fn not_served() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "nothing is served at this address",
        None,
    )
}

/// The answer for a request that could not reach `what` ("tunnel x", "port 8080 on node y").
pub fn failure(failure: &Failure, what: &str) -> Response {
    match failure {
        Failure::Offline => page(StatusCode::BAD_GATEWAY, &format!("{what} is offline"), None),
        Failure::Refused(reason) => page(
            StatusCode::BAD_GATEWAY,
            &format!("{what} refused the connection: {reason}"),
            None,
        ),
        Failure::Timeout => page(
            StatusCode::GATEWAY_TIMEOUT,
            &format!("{what} did not answer in time"),
            None,
        ),
        Failure::Unreachable(detail) => {
            tracing::warn!(detail = %detail, "proxy upstream unreachable");
            page(
                StatusCode::BAD_GATEWAY,
                &format!("{what} could not be reached"),
                None,
            )
        }
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
