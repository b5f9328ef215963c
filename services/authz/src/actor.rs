//! Who is making the current call: set by the service for the length of a
//! handler, read by audit events and invitations.

/// Who is making the current call, once `auth::guard` let it through:
/// recorded in audit events and as an invitation's creator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Actor {
    /// An internal service (the edges, the web UI, `phirepass dev`).
    Service,
    /// A client with an API token; `admin` is the user's role now (not the
    /// token's scope), so non-admins are held to their own data.
    User {
        user_id: String,
        username: String,
        admin: bool,
    },
}

impl Actor {
    /// The name audit events record: the username, or "service".
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Service => "service",
            Self::User { username, .. } => username,
        }
    }
}

tokio::task_local! {
    static ACTOR: Actor;
}

/// Runs `f` with `actor` as the current caller.
pub(crate) async fn with_actor<F: std::future::Future>(actor: Actor, f: F) -> F::Output {
    ACTOR.scope(actor, f).await
}

/// The API-token caller the current call must be held to, if she is not an
/// admin: the "own data" listings (tokens, nodes, grants, tunnel names)
/// answer only about her. `None` for the service token and for admins.
pub(crate) fn own_data_only() -> Option<(String, String)> {
    match current_actor() {
        Actor::User {
            user_id,
            username,
            admin: false,
        } => Some((user_id, username)),
        _ => None,
    }
}

/// The caller of the RPC being handled ("service" outside a handler).
pub(crate) fn current_actor() -> Actor {
    ACTOR.try_with(Clone::clone).unwrap_or(Actor::Service)
}
