//! CORS for the JSON API: origins listed in `ACCESS_CONTROL_ALLOW_ORIGIN` may call it with
//! credentials from a browser. Nothing is added for other origins, so browsers keep blocking them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

pub async fn cors(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let allowed = request
        .headers()
        .get(ORIGIN)
        .filter(|o| {
            o.to_str()
                .map(|o| {
                    state
                        .config
                        .allowed_origins
                        .iter()
                        .any(|a| a == o.trim_end_matches('/'))
                })
                .unwrap_or(false)
        })
        .cloned();
    let preflight = request.method() == Method::OPTIONS;
    let mut response = match (&allowed, preflight) {
        (Some(_), true) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            let h = r.headers_mut();
            h.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            h.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, authorization"),
            );
            h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            r
        }
        _ => next.run(request).await,
    };
    if let Some(origin) = allowed {
        let h = response.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.append(VARY, HeaderValue::from_static("origin"));
    }
    response
}
