//! A set of long-running service tasks that share one shutdown: each task's
//! result (error, early return or panic) is kept, so whoever runs the set
//! (`phirepass dev`, a test deployment) fails with the reason instead of
//! carrying on without a service.

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use crate::shutdown::{self, Shutdown, Trigger};

/// How long [`ServiceSet::run_until`] waits for services to drain.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a service stopped while the set was running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {reason}")]
pub struct ServiceFailure {
    pub service: &'static str,
    pub reason: String,
}

/// Named tasks, one trigger that stops them all, and the first failure.
pub struct ServiceSet {
    trigger: Trigger,
    shutdown: Shutdown,
    tasks: Mutex<JoinSet<()>>,
    failure: Arc<Mutex<Option<ServiceFailure>>>,
}

impl Default for ServiceSet {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceSet {
    pub fn new() -> Self {
        let (trigger, shutdown) = shutdown::channel();
        Self {
            trigger,
            shutdown,
            tasks: Mutex::new(JoinSet::new()),
            failure: Arc::new(Mutex::new(None)),
        }
    }

    /// The shutdown future to hand to a service's `serve`.
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shutdown.clone().wait()
    }

    /// Runs `service` until it returns. An error, a panic, or a return before
    /// the set was stopped is recorded as a [`ServiceFailure`] and logged.
    pub fn spawn<F, E>(&self, name: &'static str, service: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let stopping = self.shutdown.clone();
        let failure = self.failure.clone();
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tasks.spawn(async move {
            // Its own task, so a panic comes back as a JoinError instead of unwinding here.
            let reason = match tokio::spawn(service).await {
                Ok(Ok(())) if stopping.fired() => return,
                Ok(Ok(())) => "stopped unexpectedly".to_owned(),
                Ok(Err(error)) => format!("{error:#}"),
                Err(error) if error.is_panic() => format!("panicked: {error}"),
                Err(error) => format!("cancelled: {error}"),
            };
            tracing::error!(service = name, %reason, "service failed");
            let mut first = failure
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            first.get_or_insert(ServiceFailure {
                service: name,
                reason,
            });
        });
    }

    /// The first failure so far, if any.
    pub fn failure(&self) -> Option<ServiceFailure> {
        self.failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Runs until `signal` resolves (`Ok`) or a service fails (`Err`), then
    /// stops every service and waits for them, at most [`DRAIN_TIMEOUT`].
    pub async fn run_until(
        mut self,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServiceFailure> {
        let tasks = self.tasks.get_mut().unwrap_or_else(|p| p.into_inner());
        tokio::pin!(signal);
        loop {
            tokio::select! {
                () = &mut signal => break,
                done = tasks.join_next() => {
                    // A task ends only when its service failed (or the set is empty).
                    if done.is_none() || self.failure.lock().is_ok_and(|f| f.is_some()) {
                        break;
                    }
                }
            }
        }
        self.trigger.fire();
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "services still running after the drain timeout"
            );
        }
        self.failure().map_or(Ok(()), Err)
    }
}

impl Drop for ServiceSet {
    fn drop(&mut self) {
        self.trigger.fire();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_error_a_panic_or_an_early_return_is_a_failure() {
        let set = ServiceSet::new();
        set.spawn("broken", async { Err::<(), _>("bind failed") });
        assert_eq!(
            set.run_until(std::future::pending()).await,
            Err(ServiceFailure {
                service: "broken",
                reason: "bind failed".into()
            })
        );

        let set = ServiceSet::new();
        set.spawn("early", async { Ok::<(), String>(()) });
        let failure = set.run_until(std::future::pending()).await.unwrap_err();
        assert_eq!(failure.reason, "stopped unexpectedly");

        let set = ServiceSet::new();
        set.spawn("panicky", async {
            if true {
                panic!("boom");
            }
            Ok::<(), String>(())
        });
        let failure = set.run_until(std::future::pending()).await.unwrap_err();
        assert!(failure.reason.starts_with("panicked"), "{failure}");
    }

    #[tokio::test]
    async fn the_signal_stops_services_that_wait_for_shutdown() {
        let set = ServiceSet::new();
        let stop = set.shutdown();
        set.spawn("quiet", async move {
            stop.await;
            Ok::<(), String>(())
        });
        assert_eq!(set.run_until(async {}).await, Ok(()));
    }
}
