//! How much the agent runs at once and how often: one semaphore for the agent, one rate
//! window per command. A request over either limit is refused at once with a reason that
//! says which limit and what to do; nothing waits in a hidden queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;

/// Refusal prefixes the gateway maps to "429 try again later".
pub const BUSY: &str = "agent busy";
pub const RATE_LIMITED: &str = "rate limited";

/// Default of `[limits] max_concurrent`.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;

/// The agent-wide concurrency limit.
#[derive(Clone)]
pub struct Concurrency {
    slots: Arc<Semaphore>,
    max: usize,
}

impl Concurrency {
    pub fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A slot held for the whole run (released when dropped), or the refusal.
    pub fn try_start(&self) -> Result<OwnedSemaphorePermit, String> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => Err(format!(
                "{BUSY}: {max} commands are already running on this agent ([limits] max_concurrent = {max}); try again when one has finished",
                max = self.max
            )),
        }
    }
}

/// `rate = "N/s" | "N/min" | "N/h"`: at most N starts in any sliding period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || {
            format!("rate {raw:?} is not COUNT/PERIOD: write e.g. \"10/min\" (periods: s, min, h)")
        };
        let (count, per) = raw.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match per.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(format!(
                "rate {raw:?} allows nothing: use at least 1, or remove the command"
            ));
        }
        Ok(Self { count, per })
    }

    fn label(&self) -> String {
        let per = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        format!("{}/{per}", self.count)
    }
}

/// The start times of one command within its period.
pub struct RateWindow {
    rate: Rate,
    starts: Mutex<std::collections::VecDeque<Instant>>,
}

impl RateWindow {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            starts: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Records a start, or refuses it naming when the next one is allowed.
    pub fn try_start(&self, command: &str) -> Result<(), String> {
        let now = Instant::now();
        let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        while starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.rate.per)
        {
            starts.pop_front();
        }
        if starts.len() >= self.rate.count as usize {
            let wait = starts
                .front()
                .map_or(self.rate.per, |t| self.rate.per - now.duration_since(*t));
            return Err(format!(
                "{RATE_LIMITED}: {command} may run {} on this agent; try again in {} s",
                self.rate.label(),
                wait.as_secs().max(1)
            ));
        }
        starts.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_or_say_how() {
        assert_eq!(
            Rate::parse("10/min").unwrap(),
            Rate {
                count: 10,
                per: Duration::from_secs(60)
            }
        );
        assert_eq!(Rate::parse(" 2 / s ").unwrap().per, Duration::from_secs(1));
        for bad in ["10", "x/min", "10/day", "-1/min"] {
            assert!(
                Rate::parse(bad).unwrap_err().contains("e.g. \"10/min\""),
                "{bad}"
            );
        }
        assert!(Rate::parse("0/min").unwrap_err().contains("allows nothing"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_slides() {
        let window = RateWindow::new(Rate::parse("2/min").unwrap());
        window.try_start("uptime").unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        window.try_start("uptime").unwrap();
        let err = window.try_start("uptime").unwrap_err();
        assert!(
            err.starts_with(RATE_LIMITED) && err.contains("2/min") && err.contains("30 s"),
            "{err}"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        window.try_start("uptime").unwrap();
    }

    #[test]
    fn concurrency_refuses_past_the_limit_and_frees_on_drop() {
        let limit = Concurrency::new(1);
        let first = limit.try_start().unwrap();
        let err = limit.try_start().unwrap_err();
        assert!(
            err.starts_with(BUSY) && err.contains("max_concurrent = 1"),
            "{err}"
        );
        drop(first);
        assert!(limit.try_start().is_ok());
    }
}
