#![allow(clippy::unwrap_used)]

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn limits(cap: usize, max_sources: usize) -> PerSourceLimits {
    PerSourceLimits {
        max_unauthenticated: cap,
        penalties: Some(Penalties::default()),
        max_sources,
    }
}

#[test]
fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
    assert_eq!(
        Source::of(ip("::ffff:10.0.0.1")),
        Source::of(ip("10.0.0.1"))
    );
    assert_ne!(Source::of(ip("10.0.0.1")), Source::of(ip("10.0.0.2")));
    assert_eq!(
        Source::of(ip("2001:db8:1:2::1")),
        Source::of(ip("2001:db8:1:2:ffff::9"))
    );
    assert_ne!(
        Source::of(ip("2001:db8:1:2::1")),
        Source::of(ip("2001:db8:1:3::1"))
    );
    assert_eq!(
        Source::of(ip("2001:db8:1:2::1")).to_string(),
        "2001:db8:1:2::/64"
    );
}

#[tokio::test(start_paused = true)]
async fn the_cap_is_per_source_and_slots_come_back() {
    let ps = PerSource::new(limits(2, 100));
    let a = ps.admit(ip("192.0.2.1")).unwrap();
    let _b = ps.admit(ip("192.0.2.1")).unwrap();
    assert_eq!(ps.admit(ip("192.0.2.1")).err(), Some(Refusal::TooMany));
    let _other = ps.admit(ip("192.0.2.2")).unwrap();
    drop(a);
    let _again = ps.admit(ip("192.0.2.1")).unwrap();
}

#[tokio::test(start_paused = true)]
async fn penalties_add_up_block_at_min_grow_while_refused_and_run_out() {
    let ps = PerSource::new(limits(10, 100));
    let src = ip("198.51.100.7");
    // Two failed logins owe 10 s: under min (15 s), still admitted.
    ps.closed(src, Outcome::AuthFailed);
    ps.closed(src, Outcome::AuthFailed);
    drop(ps.admit(src).unwrap());
    ps.closed(src, Outcome::AuthFailed);
    let Err(Refusal::Penalised(left)) = ps.admit(src) else {
        panic!("a third failure blocks");
    };
    assert_eq!(left, Duration::from_secs(15));
    // Each refused attempt adds 1 s: knocking makes it longer.
    let Err(Refusal::Penalised(left)) = ps.admit(src) else {
        panic!("still blocked");
    };
    assert_eq!(left, Duration::from_secs(16));
    // Other sources are untouched.
    drop(ps.admit(ip("198.51.100.8")).unwrap());
    tokio::time::advance(Duration::from_secs(18)).await;
    drop(ps.admit(src).unwrap());
    // Logins and shutdowns cost nothing; the entry goes once nothing is owed.
    ps.closed(src, Outcome::Verified);
    ps.closed(src, Outcome::Shutdown);
    assert_eq!(ps.tracked(), 0);
}

#[tokio::test(start_paused = true)]
async fn penalties_are_capped_at_max() {
    let ps = PerSource::new(limits(10, 100));
    let src = ip("203.0.113.9");
    for _ in 0..200 {
        ps.closed(src, Outcome::GraceExceeded);
    }
    let Err(Refusal::Penalised(left)) = ps.admit(src) else {
        panic!("blocked");
    };
    assert_eq!(left, Duration::from_secs(600));
}

#[tokio::test(start_paused = true)]
async fn a_full_table_sweeps_expired_entries_then_lets_new_sources_in_untracked() {
    let ps = PerSource::new(limits(1, 2));
    ps.closed(ip("192.0.2.1"), Outcome::NoAuth);
    let _held = ps.admit(ip("192.0.2.2")).unwrap();
    // Full: a new source gets in but is not tracked (the global cap still holds).
    let _a = ps.admit(ip("192.0.2.3")).unwrap();
    let _b = ps.admit(ip("192.0.2.3")).unwrap();
    assert_eq!(ps.tracked(), 2);
    // Once the first penalty ran out, the sweep makes room.
    tokio::time::advance(Duration::from_secs(2)).await;
    let _c = ps.admit(ip("192.0.2.4")).unwrap();
    assert_eq!(ps.admit(ip("192.0.2.4")).err(), Some(Refusal::TooMany));
    assert_eq!(ps.tracked(), 2);
}

#[tokio::test(start_paused = true)]
async fn off_admits_everyone() {
    let ps = PerSource::new(PerSourceLimits::off());
    let held: Vec<_> = (0..50)
        .map(|_| ps.admit(ip("192.0.2.1")).unwrap())
        .collect();
    ps.closed(ip("192.0.2.1"), Outcome::AuthFailed);
    assert_eq!(held.len(), 50);
    assert_eq!(ps.tracked(), 0);
}
