//! When a holder may ask authz for its keys again: a ticket under a key id it does not know
//! may be the first one signed after a rotation (ask at once), or a forgery under a made-up id
//! (do not let it turn every message into an RPC). Ids found missing right after a refresh are
//! not asked about again for a while, and refreshes are capped per second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refreshes allowed per second, whatever the key ids.
const PER_SECOND: u32 = 10;
/// How long an id authz did not have stays known as missing.
const MISSING_FOR: Duration = Duration::from_secs(30);
/// Missing ids remembered at most.
const MISSING_MAX: usize = 256;

#[derive(Default)]
struct State {
    window: Option<Instant>,
    in_window: u32,
    missing: HashMap<String, Instant>,
}

#[derive(Default)]
pub struct RefreshGate {
    state: Mutex<State>,
}

impl RefreshGate {
    /// Whether to ask authz now about key `kid` (counted when it says yes).
    pub fn allow(&self, kid: &str, now: Instant) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st
            .missing
            .get(kid)
            .is_some_and(|at| now.duration_since(*at) < MISSING_FOR)
        {
            return false;
        }
        match st.window {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {
                if st.in_window >= PER_SECOND {
                    return false;
                }
                st.in_window += 1;
            }
            _ => {
                st.window = Some(now);
                st.in_window = 1;
            }
        }
        true
    }

    /// authz's answer did not have `kid` either.
    pub fn missing(&self, kid: &str, now: Instant) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.missing.len() >= MISSING_MAX {
            st.missing
                .retain(|_, at| now.duration_since(*at) < MISSING_FOR);
            if st.missing.len() >= MISSING_MAX {
                return;
            }
        }
        st.missing.insert(kid.to_owned(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_asked_about_at_once_and_a_made_up_one_only_once() {
        let gate = RefreshGate::default();
        let t0 = Instant::now();
        assert!(gate.allow("a", t0));
        // Right after: a rotation's first ticket still gets its refresh.
        assert!(gate.allow("b", t0 + Duration::from_millis(50)));
        gate.missing("b", t0 + Duration::from_millis(60));
        assert!(!gate.allow("b", t0 + Duration::from_secs(5)));
        assert!(gate.allow("b", t0 + MISSING_FOR + Duration::from_secs(1)));
    }

    #[test]
    fn refreshes_are_capped_per_second() {
        let gate = RefreshGate::default();
        let t0 = Instant::now();
        let allowed = (0..50)
            .filter(|i| gate.allow(&format!("k{i}"), t0 + Duration::from_millis(*i)))
            .count();
        assert_eq!(allowed, PER_SECOND as usize);
        assert!(gate.allow("late", t0 + Duration::from_millis(1100)));
    }
}
