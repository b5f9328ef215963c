//! One test per refusal, and the rotation paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const NOW: u64 = 1_800_000_000_000;

fn scope() -> Scope {
    Scope {
        node: "node-a".into(),
        target: TicketTarget::Ssh,
        edge: "gw-1".into(),
        stream: 42,
    }
}

fn pinned(signer: &TicketSigner, audience: Audience) -> TicketVerifier {
    let keys = KeySet::new(vec![signer.public_key().clone()]).unwrap();
    TicketVerifier::new(keys, audience)
}

fn verify(v: &TicketVerifier, ticket: &str, scope: &Scope) -> Result<Claims, TicketError> {
    v.verify(Some(ticket), scope, NOW)
}

#[test]
fn a_valid_ticket_verifies_once() {
    let signer = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    let ticket = signer.sign("u-1", &scope(), NOW, TICKET_TTL_MS).unwrap();
    let claims = verify(&v, &ticket, &scope()).unwrap();
    assert_eq!(claims.user, "u-1");
    assert_eq!(claims.kid, signer.kid());
    assert_eq!(verify(&v, &ticket, &scope()), Err(TicketError::Replayed));
}

#[test]
fn no_ticket_is_refused() {
    let signer = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    assert_eq!(v.verify(None, &scope(), NOW), Err(TicketError::Missing));
    assert_eq!(verify(&v, "", &scope()), Err(TicketError::Missing));
}

#[test]
fn malformed_tickets_are_refused() {
    let signer = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    for bad in ["abc", "a.b", "!!.!!", "e30.AA"] {
        assert!(
            matches!(verify(&v, bad, &scope()), Err(TicketError::Malformed(_))),
            "{bad}"
        );
    }
    let long = "a".repeat(MAX_TICKET_LEN + 1);
    assert_eq!(
        verify(&v, &long, &scope()),
        Err(TicketError::Malformed("too long"))
    );
}

#[test]
fn a_changed_claim_breaks_the_signature() {
    let signer = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    let ticket = signer.sign("u-1", &scope(), NOW, TICKET_TTL_MS).unwrap();
    let (_, sig) = ticket.split_once('.').unwrap();
    let mut claims = peek(&ticket).unwrap();
    claims.target = TicketTarget::Port { port: 5432 };
    let other = TicketSigner::generate().unwrap().sign_claims(&claims);
    let (head, _) = other.split_once('.').unwrap();
    let forged = format!("{head}.{sig}");
    let mut s = scope();
    s.target = TicketTarget::Port { port: 5432 };
    assert_eq!(verify(&v, &forged, &s), Err(TicketError::BadSignature));
}

#[test]
fn an_unknown_key_is_refused() {
    let signer = TicketSigner::generate().unwrap();
    let stranger = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    let ticket = stranger.sign("u-1", &scope(), NOW, TICKET_TTL_MS).unwrap();
    assert_eq!(
        verify(&v, &ticket, &scope()),
        Err(TicketError::UnknownKey(stranger.kid().to_owned()))
    );
}

#[test]
fn a_stranger_claiming_a_pinned_key_id_fails_the_signature() {
    let signer = TicketSigner::generate().unwrap();
    let stranger = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    let mut claims = peek(&signer.sign("u-1", &scope(), NOW, TICKET_TTL_MS).unwrap()).unwrap();
    claims.nonce = "other".into();
    let forged = stranger.sign_claims(&claims);
    assert_eq!(
        verify(&v, &forged, &scope()),
        Err(TicketError::BadSignature)
    );
}

#[test]
fn no_pinned_keys_refuses_everything() {
    let signer = TicketSigner::generate().unwrap();
    let v = TicketVerifier::new(KeySet::default(), Audience::Agent);
    let ticket = signer.sign("u-1", &scope(), NOW, TICKET_TTL_MS).unwrap();
    assert_eq!(verify(&v, &ticket, &scope()), Err(TicketError::NoKeys));
}

#[test]
fn expiry_allows_only_the_clock_skew() {
    let signer = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    let issued = NOW - TICKET_TTL_MS - CLOCK_SKEW_MS + 1;
    let within = signer.sign("u-1", &scope(), issued, TICKET_TTL_MS).unwrap();
    assert!(verify(&v, &within, &scope()).is_ok());
    let expired = signer
        .sign("u-1", &scope(), issued - 2, TICKET_TTL_MS)
        .unwrap();
    assert_eq!(verify(&v, &expired, &scope()), Err(TicketError::Expired));
}

#[test]
fn a_ticket_from_the_future_is_refused() {
    let signer = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    let ahead = signer
        .sign("u-1", &scope(), NOW + CLOCK_SKEW_MS + 1, TICKET_TTL_MS)
        .unwrap();
    assert_eq!(verify(&v, &ahead, &scope()), Err(TicketError::NotYetValid));
}

#[test]
fn a_long_lived_ticket_is_refused() {
    let signer = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    let long = signer.sign("u-1", &scope(), NOW, MAX_TTL_MS + 1).unwrap();
    assert_eq!(verify(&v, &long, &scope()), Err(TicketError::TooLong));
}

#[test]
fn a_ticket_for_another_open_is_refused() {
    let signer = TicketSigner::generate().unwrap();
    let v = pinned(&signer, Audience::Agent);
    type Change = fn(&mut Scope);
    let cases: [(&str, Change); 4] = [
        ("node", |s| s.node = "node-b".into()),
        ("target", |s| s.target = TicketTarget::Port { port: 22 }),
        ("edge", |s| s.edge = "gw-2".into()),
        ("stream", |s| s.stream = 43),
    ];
    for (field, change) in cases {
        let ticket = signer.sign("u-1", &scope(), NOW, TICKET_TTL_MS).unwrap();
        let mut other = scope();
        change(&mut other);
        assert_eq!(
            verify(&v, &ticket, &other),
            Err(TicketError::Mismatch(field))
        );
    }
}

#[test]
fn a_public_ticket_reaches_tunnels_only() {
    let signer = TicketSigner::generate().unwrap();
    let agent = pinned(&signer, Audience::Agent);
    let tunnel = pinned(&signer, Audience::Tunnel);
    let ticket = signer.sign("", &scope(), NOW, TICKET_TTL_MS).unwrap();
    assert_eq!(verify(&agent, &ticket, &scope()), Err(TicketError::NoUser));
    assert!(verify(&tunnel, &ticket, &scope()).is_ok());
}

#[test]
fn the_replay_cache_is_bounded_and_forgets_expired_nonces() {
    let mut cache = ReplayCache::new(2);
    cache.check("a", NOW + 10, NOW).unwrap();
    cache.check("b", NOW + 20, NOW).unwrap();
    assert_eq!(
        cache.check("c", NOW + 30, NOW),
        Err(TicketError::ReplayCacheFull)
    );
    assert_eq!(cache.check("a", NOW + 10, NOW), Err(TicketError::Replayed));
    cache.check("c", NOW + 30, NOW + 11).unwrap();
    assert_eq!(cache.len(), 2);
}

#[test]
fn an_endorsed_key_joins_and_its_tickets_verify() {
    let old = TicketSigner::generate().unwrap();
    let new = TicketSigner::generate().unwrap();
    let v = pinned(&old, Audience::Agent);
    let old_ticket = old.sign("u-1", &scope(), NOW, TICKET_TTL_MS).unwrap();
    let added = v.accept_endorsed(&[old.endorse(new.public_key())]);
    assert_eq!(added, vec![new.kid().to_owned()]);
    let mut s = scope();
    s.stream = 43;
    let new_ticket = new.sign("u-1", &s, NOW, TICKET_TTL_MS).unwrap();
    assert!(verify(&v, &new_ticket, &s).is_ok());
    // Overlap: the old key still verifies.
    assert!(verify(&v, &old_ticket, &scope()).is_ok());
    assert!(
        v.accept_endorsed(&[old.endorse(new.public_key())])
            .is_empty()
    );
}

#[test]
fn a_chain_of_endorsements_joins_in_any_order() {
    let a = TicketSigner::generate().unwrap();
    let b = TicketSigner::generate().unwrap();
    let c = TicketSigner::generate().unwrap();
    let mut set = KeySet::new(vec![a.public_key().clone()]).unwrap();
    let added = set.accept_all(&[b.endorse(c.public_key()), a.endorse(b.public_key())]);
    assert_eq!(added.len(), 2);
    assert!(set.get(c.kid()).is_some());
}

#[test]
fn an_endorsement_by_an_unpinned_key_is_refused() {
    let pinned_key = TicketSigner::generate().unwrap();
    let stranger = TicketSigner::generate().unwrap();
    let new = TicketSigner::generate().unwrap();
    let mut set = KeySet::new(vec![pinned_key.public_key().clone()]).unwrap();
    assert_eq!(
        set.accept(&stranger.endorse(new.public_key())),
        Err(TicketError::UntrustedEndorser(stranger.kid().to_owned()))
    );
    // A stranger's endorsement claiming the pinned key as endorser fails its signature.
    let mut claimed = stranger.endorse(new.public_key());
    claimed.endorser = pinned_key.kid().to_owned();
    assert_eq!(set.accept(&claimed), Err(TicketError::BadEndorsement));
    // A ticket signed by the endorsed key a signature was spent on is not trusted.
    assert!(set.get(new.kid()).is_none());
}

#[test]
fn an_endorsement_cannot_swap_the_key_under_an_id() {
    let a = TicketSigner::generate().unwrap();
    let b = TicketSigner::generate().unwrap();
    let mut set = KeySet::new(vec![a.public_key().clone()]).unwrap();
    let mut e = a.endorse(b.public_key());
    e.key.kid = "0000000000000000".into();
    assert_eq!(
        set.accept(&e),
        Err(TicketError::InvalidKey("key id does not match the key"))
    );
}

#[test]
fn a_key_set_keeps_the_newest_keys() {
    let first = TicketSigner::generate().unwrap();
    let mut set = KeySet::new(vec![first.public_key().clone()]).unwrap();
    let mut last = first;
    for _ in 0..MAX_KEYS {
        let next = TicketSigner::generate().unwrap();
        assert_eq!(set.accept(&last.endorse(next.public_key())), Ok(true));
        last = next;
    }
    assert_eq!(set.keys.len(), MAX_KEYS);
    assert!(set.get(last.kid()).is_some());
}

#[test]
fn keys_load_from_pem_and_keep_their_id() {
    let pem = generate_pem().unwrap();
    let a = TicketSigner::from_pem(&pem).unwrap();
    let b = TicketSigner::from_pem(&pem).unwrap();
    assert_eq!(a.kid(), b.kid());
    assert_eq!(a.kid().len(), 16);
    assert!(matches!(
        TicketSigner::from_pem("not a key"),
        Err(TicketError::InvalidKey(_))
    ));
    assert!(!format!("{a:?}").contains(&pem[30..60]));
}
