//! Who is making the current call: set by the service for the length of a
//! handler, read by audit events and invitations.

/// Who is making the current call, once `auth::guard` let it through:
/// recorded in audit events and as an invitation's creator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Actor {
    /// An internal service (the edges, the web UI, `phirepass dev`).
    Service,
    /// An admin client with an API token.
    User { user_id: String, username: String },
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

/// The caller of the RPC being handled ("service" outside a handler).
pub(crate) fn current_actor() -> Actor {
    ACTOR.try_with(Clone::clone).unwrap_or(Actor::Service)
}
