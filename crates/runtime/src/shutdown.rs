//! Process shutdown: the OS signal, and one trigger fanned out to every task
//! that must stop with the process (each service's `serve`, in `phirepass dev`
//! and in tests).

use tokio::sync::watch;

/// Fires the shutdown that every [`Shutdown`] cloned from the same
/// [`channel`] waits for. Dropping the trigger fires it too.
pub struct Trigger(watch::Sender<bool>);

/// Waits for its [`Trigger`]; clone one per task.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new trigger and the shutdown it fires.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Resolves once the trigger fires (or is dropped).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether the trigger has fired (or is gone).
    pub fn fired(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `docker stop` and
/// Kubernetes send). If no handler can be installed it never resolves, so a
/// service keeps running rather than exiting at once.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => tracing::info!("received ctrl-c, shutting down"),
        () = term => tracing::info!("received sigterm, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_wakes_when_the_trigger_fires_or_drops() {
        let (trigger, shutdown) = channel();
        let other = shutdown.clone();
        assert!(!shutdown.fired());
        let waiter = tokio::spawn(shutdown.clone().wait());
        trigger.fire();
        let _ = waiter.await;
        assert!(shutdown.fired() && other.fired());

        let (trigger, shutdown) = channel();
        drop(trigger);
        shutdown.clone().wait().await;
        assert!(shutdown.fired());
    }
}
