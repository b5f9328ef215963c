//! Agent ports in the browser (design note 004). The dashboard's `GET /api/apps/open` mints a
//! scoped app token (authz CreateAppToken: one node, one port, 15 minutes) and redirects to the
//! app host's `/__phirepass/callback`, which turns it into a host-only cookie. Every request on
//! the app host is checked with VerifyAppToken before it is proxied, so a revoked grant stops
//! the next request (after the at most one second the answer is cached).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use phirepass_proto::authz::{AppToken, CreateAppTokenRequest, VerifyAppTokenRequest};
use serde::Deserialize;
use tracing::{debug, info, warn};

use super::headers::{self, cookie};
use super::{host, page};
use crate::accounts::auth::require_user;
use crate::accounts::cookie::Jar;
use crate::error::GatewayError;
use crate::http::client_ip::client_ip;
use crate::http::origin;
use crate::state::AppState;
use phirepass_runtime::clock::now_millis;

/// The app host's reserved path prefix: never proxied.
const RESERVED: &str = "/__phirepass/";
const CALLBACK: &str = "/__phirepass/callback";
/// Longest token looked at; real ones are 50 characters.
const MAX_TOKEN_LEN: usize = 128;

#[derive(Deserialize)]
pub struct OpenQuery {
    node: String,
    port: u16,
}

#[derive(Deserialize)]
struct CallbackQuery {
    token: String,
}

/// `GET /api/apps/open?node=&port=` on the main host: 303 to the app host's callback with a
/// fresh token, or to the login page without a session.
pub async fn open(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<OpenQuery>,
) -> Response {
    let proxy = &state.config.proxy;
    let Some(apps_domain) = proxy.apps_domain.clone() else {
        return GatewayError::NotFound("app proxy".into()).into_response();
    };
    let user = match require_user(&state, &headers).await {
        Ok(user) => user,
        Err(GatewayError::Unauthenticated) => {
            let next = format!("/api/apps/open?node={}&port={}", encode(&q.node), q.port);
            return see_other(&format!("/login?next={}", encode(&next)));
        }
        Err(e) => return e.into_response(),
    };
    let minted = state
        .authz
        .clone()
        .create_app_token(CreateAppTokenRequest {
            user_id: user.id.clone(),
            node: q.node.clone(),
            port: u32::from(q.port),
            client_ip: Some(client_ip(&state.config, peer, &headers)),
        })
        .await;
    let token = match minted {
        Ok(t) => t.into_inner(),
        Err(s) => {
            warn!(user = %user.username, node = %q.node, port = q.port, code = ?s.code(), "app token refused");
            return GatewayError::from_status(s, "node").into_response();
        }
    };
    if let Some(refusal) = port_not_allowed(&state, &token).await {
        return refusal;
    }
    if !host::node_label(&token.node_name) {
        return GatewayError::BadRequest(format!(
            "node name {:?} cannot be a host name label (it contains '.')",
            token.node_name
        ))
        .into_response();
    }
    info!(user = %user.username, node = %token.node_name, port = token.port, "app token issued");
    let port_suffix = proxy
        .public_port
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let url = format!(
        "{}://{}-{}.{apps_domain}{port_suffix}{CALLBACK}?token={}",
        proxy.public_scheme,
        token.port,
        token.node_name,
        encode(&token.token)
    );
    see_other(&url)
}

/// A page instead of the redirect when the node's agent reports its allowed ports and this one is
/// not among them (it would refuse the stream: a 502 on the app host). Unknown (offline, or an
/// agent that does not report them): the redirect goes ahead and the agent decides.
async fn port_not_allowed(state: &AppState, token: &AppToken) -> Option<Response> {
    let presence = state
        .registry
        .clone()
        .get_node(phirepass_proto::registry::GetNodeRequest {
            node_id: token.node_id.clone(),
        })
        .await
        .ok()?
        .into_inner();
    let allowed = presence.stats?.allowed_ports?.ports;
    if allowed.contains(&token.port) {
        return None;
    }
    let node = &token.node_name;
    let port = token.port;
    let message = if allowed.is_empty() {
        format!(
            "node {node} allows no ports: start its agent with ALLOWED_PORTS={port} to open port \
             {port} here"
        )
    } else {
        let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
        format!(
            "node {node} does not allow port {port}; it allows {}. To open {port}, add it to the \
             agent's ALLOWED_PORTS (ALLOWED_PORTS={},{port}) and restart the agent",
            list.join(", "),
            list.join(",")
        )
    };
    info!(node = %node, port, "app port refused: not in the agent's ALLOWED_PORTS");
    Some(page::page(
        StatusCode::FORBIDDEN,
        &message,
        Some(("/", "Back to your nodes")),
    ))
}

/// Everything on an app host `<port>-<node>.<APPS_DOMAIN>`.
pub async fn serve(
    state: &AppState,
    node: &str,
    port: u16,
    request: Request,
    client: &headers::Client<'_>,
) -> Response {
    // Before anything else: a sibling page's WebSocket or POST never reaches the app, the
    // callback or the token check.
    let upgrade = headers::upgrade_requested(request.headers()).is_some();
    let scheme = &state.config.proxy.public_scheme;
    if let Err(why) = origin::app_request(
        scheme,
        client.host,
        request.method(),
        upgrade,
        request.headers(),
    ) {
        let (method, origin) = (request.method(), request.headers().get("origin"));
        warn!(%node, port, %method, upgrade, ?origin, "app request refused: {why}");
        return secured(state, page::page(StatusCode::FORBIDDEN, &why, None));
    }
    let jar = Jar::of(&state.config, request.headers());
    let path = request.uri().path();
    if path == CALLBACK {
        return callback(state, node, port, request.uri(), request.headers(), client).await;
    }
    if path.starts_with(RESERVED) {
        return secured(state, page::not_served());
    }
    let Some(token) = cookie(request.headers(), jar.app()) else {
        return secured(state, login_page(state, node, port));
    };
    let app_token = token.clone();
    let key = (token, node.to_string(), port);
    let cached = (state.proxy.verified.get(&key)).zip(state.proxy.users.get(&key));
    let (node_id, user_id, refreshed) = match cached {
        Some((node_id, user_id)) => (node_id, user_id, None),
        None => match verify(state, &key.0, node, port, client, request.headers()).await {
            Ok(v) => {
                state.proxy.users.put(key.clone(), v.user_id.clone());
                state.proxy.verified.put(key, v.node_id.clone());
                (v.node_id, v.user_id, v.refreshed)
            }
            Err(response) => return secured(state, response),
        },
    };
    // A WebSocket ends when the grant behind it is revoked.
    let watched = (app_token.as_str(), node, port, node_id.as_str());
    let request = match super::revocation::watch_app(state, watched, request, client).await {
        Ok(request) => request,
        Err(response) => return secured(state, response),
    };
    let mut response = match state
        .proxy
        .engine
        .forward(
            &super::connector::user_opener(&user_id),
            &node_id,
            port,
            request,
            client,
        )
        .await
    {
        Ok(response) => response,
        Err(failure) => {
            debug!(node = %node, port, ?failure, "app request failed");
            page::failure(&failure, &format!("port {port} on node {node}"))
        }
    };
    if let Some(t) = refreshed {
        set_cookie(jar, &mut response, &t);
    }
    secured(state, response)
}

/// `/__phirepass/callback?token=`: checks the token for this very host, stores it in the
/// cookie and sends the browser to `/` (so the token leaves the address bar and history).
async fn callback(
    state: &AppState,
    node: &str,
    port: u16,
    uri: &Uri,
    request_headers: &HeaderMap,
    client: &headers::Client<'_>,
) -> Response {
    let token = Query::<CallbackQuery>::try_from_uri(uri)
        .map(|q| q.0.token)
        .unwrap_or_default();
    let mut response = match verify(state, &token, node, port, client, request_headers).await {
        Ok(v) => {
            let mut r = see_other("/");
            let current = AppToken {
                token: token.clone(),
                expires_at: v.expires_at,
                ..AppToken::default()
            };
            let jar = Jar::of(&state.config, request_headers);
            set_cookie(jar, &mut r, v.refreshed.as_ref().unwrap_or(&current));
            r
        }
        Err(r) => r,
    };
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    secured(state, response)
}

struct Verified {
    node_id: String,
    user_id: String,
    expires_at: i64,
    refreshed: Option<AppToken>,
}

/// VerifyAppToken for this host's node and port: the node id and maybe a refreshed token, or
/// the page to answer with.
async fn verify(
    state: &AppState,
    token: &str,
    node: &str,
    port: u16,
    client: &headers::Client<'_>,
    request_headers: &HeaderMap,
) -> Result<Verified, Response> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(login_page(state, node, port));
    }
    let reply = state
        .authz
        .clone()
        .verify_app_token(VerifyAppTokenRequest {
            token: token.to_string(),
            node: node.to_string(),
            port: u32::from(port),
            client_ip: Some(client_ip(&state.config, client.peer, request_headers)),
        })
        .await;
    match reply {
        Ok(r) => {
            let r = r.into_inner();
            if !phirepass_tunnel::valid_token(&r.node_id) {
                return Err(page::page(StatusCode::BAD_GATEWAY, "invalid node", None));
            }
            Ok(Verified {
                node_id: r.node_id,
                user_id: r.user_id,
                expires_at: r.expires_at,
                refreshed: r.refreshed,
            })
        }
        Err(s) => Err(match s.code() {
            tonic::Code::Unauthenticated | tonic::Code::InvalidArgument => {
                login_page(state, node, port)
            }
            tonic::Code::PermissionDenied => page::page(
                StatusCode::FORBIDDEN,
                &format!("you no longer have access to node {node}"),
                None,
            ),
            tonic::Code::NotFound => page::page(
                StatusCode::NOT_FOUND,
                &format!("no node named {node}"),
                None,
            ),
            code => {
                warn!(node = %node, port, code = ?code, "app token check failed");
                page::page(
                    StatusCode::BAD_GATEWAY,
                    "access check failed, try again",
                    None,
                )
            }
        }),
    }
}

/// 401 with a way back through the dashboard, which mints a new token.
fn login_page(state: &AppState, node: &str, port: u16) -> Response {
    let message = format!("log in to Phirepass to open port {port} on node {node}");
    match &state.config.proxy.main_origin {
        Some(origin) => {
            let href = format!("{origin}/api/apps/open?node={}&port={port}", encode(node));
            page::page(StatusCode::UNAUTHORIZED, &message, Some((&href, "Log in")))
        }
        None => page::page(StatusCode::UNAUTHORIZED, &message, None),
    }
}

/// The app cookie: host-only (no Domain, so no other subdomain or the main site ever sees
/// it), HttpOnly, `__Host-` and Secure wherever the browser takes them (see [`Jar`]). SameSite=Lax
/// rather than Strict: the first navigation arrives from the main domain (a cross-site redirect
/// chain), and Strict would withhold the cookie on that navigation's follow-up request to `/`;
/// what Lax still lets a same-site page send is refused by [`origin::app_request`].
fn set_cookie(jar: Jar, response: &mut Response, token: &AppToken) {
    let max_age = if token.expires_at > 0 {
        format!(
            "; Max-Age={}",
            ((token.expires_at - now_millis()) / 1000).max(0)
        )
    } else {
        String::new()
    };
    let value = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Lax{max_age}{}",
        jar.app(),
        token.token,
        jar.secure_attribute()
    );
    match HeaderValue::from_str(&value) {
        Ok(v) => {
            response.headers_mut().append(SET_COOKIE, v);
        }
        Err(_) => warn!("app token is not a valid cookie value; not set"),
    }
}

/// Security headers on every app-host answer: who may frame it.
fn secured(state: &AppState, mut response: Response) -> Response {
    let value = format!("frame-ancestors {}", state.config.proxy.frame_ancestors());
    if let Ok(v) = HeaderValue::from_str(&value) {
        // Appended: an app's own CSP still applies; browsers enforce every policy sent.
        response
            .headers_mut()
            .append(axum::http::header::CONTENT_SECURITY_POLICY, v);
    }
    response
}

fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, v);
    }
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
