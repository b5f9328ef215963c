//! Which account on the target: grants list logins, Authorize checks the one an edge names
//! (and resolves the default one), ListAccessibleTargets offers them to the menu. On
//! PostgreSQL + Redis + NATS and on the embedded stack; every question is asked twice, so
//! the second answer comes from the decision cache.

use crate::common::{Harness, Options, Stack};
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    grant_logins_decide_the_account,
    default_account_without_logins_is_the_configured_one,
    owners_may_use_any_account,
    logins_are_listed_validated_and_audited,
);

/// Authorize `user` on `target` as `login` (None: no account checked), with the vault's
/// account `configured`; asked twice, the answers must agree (computed, then cached).
async fn as_login(
    h: &Harness,
    user: &str,
    target: &str,
    login: Option<&str>,
    configured: &str,
) -> pb::AuthorizeResponse {
    let request = pb::AuthorizeRequest {
        username: user.into(),
        target: target.into(),
        action: "shell".into(),
        login: login.map(str::to_owned),
        configured_login: configured.into(),
        ..Default::default()
    };
    let mut c = h.client();
    let first = c.authorize(request.clone()).await.unwrap().into_inner();
    let second = c.authorize(request).await.unwrap().into_inner();
    assert_eq!(
        first, second,
        "cached answer differs for {user} as {login:?}"
    );
    first
}

async fn grant(h: &Harness, kind: pb::PrincipalKind, who: &str, target: &str, logins: &[&str]) {
    h.client()
        .grant(pb::GrantRequest {
            principal_kind: kind.into(),
            principal: who.into(),
            target: target.into(),
            logins: logins.iter().map(|l| l.to_string()).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn host(h: &Harness, name: &str) {
    h.client()
        .add_host(pb::AddHostRequest {
            name: name.into(),
            ip: "10.1.2.3".into(),
            port: 22,
        })
        .await
        .unwrap();
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn grant_logins_decide_the_account(stack: Stack) {
    use pb::PrincipalKind::{Group, User};
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("bob").await;
    host(&h, "db").await;
    let mut c = h.client();
    c.create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    c.add_group_member(pb::AddGroupMemberRequest {
        group: "ops".into(),
        username: "bob".into(),
    })
    .await
    .unwrap();
    grant(&h, Group, "ops", "db", &["ops", "deploy"]).await;
    grant(&h, User, "bob", "db", &["deploy", "root"]).await;

    // Listed by the direct grant or the group's: allowed, whatever the vault names.
    for login in ["deploy", "root", "ops"] {
        let d = as_login(&h, "bob", "db", Some(login), "svc").await;
        assert!(d.allowed, "{login}: {d:?}");
        assert_eq!(d.login, login);
    }
    // Not listed: refused for the account alone, naming the choices.
    let d = as_login(&h, "bob", "db", Some("admin"), "").await;
    assert!(!d.allowed);
    assert_eq!(d.reason, "login not allowed");
    assert_eq!(d.login, "admin");
    assert_eq!(d.target_name, "db");
    assert_eq!(d.logins, strings(&["deploy", "root", "ops"]));
    // The vault's account when listed, else the strongest grant's first login.
    assert_eq!(
        as_login(&h, "bob", "db", Some(""), "root").await.login,
        "root"
    );
    assert_eq!(
        as_login(&h, "bob", "db", Some(""), "svc").await.login,
        "deploy"
    );
    assert_eq!(
        as_login(&h, "bob", "db", Some(""), "").await.login,
        "deploy"
    );
    // No login named: nothing checked (HTTP, TCP, the browser).
    let d = as_login(&h, "bob", "db", None, "").await;
    assert!(d.allowed && d.login.is_empty(), "{d:?}");

    // Granting again replaces the list: only the default account (and the group's) now.
    grant(&h, User, "bob", "db", &[]).await;
    assert!(!as_login(&h, "bob", "db", Some("root"), "svc").await.allowed);
    assert!(as_login(&h, "bob", "db", Some("ops"), "svc").await.allowed);
    let d = as_login(&h, "bob", "db", Some(""), "svc").await;
    assert!(d.allowed);
    assert_eq!(d.login, "svc");
    // The edges' re-check reads the same facts: the group's logins, and the default account.
    let listed = c
        .list_accessible_targets(pb::ListAccessibleTargetsRequest {
            username: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert_eq!(listed[0].logins, strings(&["ops", "deploy"]));
    assert!(listed[0].default_login, "the direct grant lists none");
    h.stop().await;
}

async fn default_account_without_logins_is_the_configured_one(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    host(&h, "db").await;
    grant(&h, pb::PrincipalKind::User, "alice", "db", &[]).await;
    // Today's behaviour: the vault's account, else her own name, and nothing else.
    assert_eq!(
        as_login(&h, "alice", "db", Some(""), "svc").await.login,
        "svc"
    );
    assert_eq!(
        as_login(&h, "alice", "db", Some(""), "").await.login,
        "alice"
    );
    assert!(
        as_login(&h, "alice", "db", Some("svc"), "svc")
            .await
            .allowed
    );
    assert!(as_login(&h, "alice", "db", Some("alice"), "").await.allowed);
    let d = as_login(&h, "alice", "db", Some("root"), "svc").await;
    assert!(!d.allowed);
    assert_eq!(d.reason, "login not allowed");
    assert!(d.logins.is_empty());
    // A denial for the target itself stays what it was.
    let d = as_login(&h, "alice", "nowhere", Some("root"), "").await;
    assert_eq!(d.reason, "unknown target");
    h.stop().await;
}

async fn owners_may_use_any_account(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("carol").await;
    h.node_token("carol", "web", None).await.unwrap();
    let d = as_login(&h, "carol", "web", Some("root"), "").await;
    assert!(d.allowed && d.any_login, "{d:?}");
    assert_eq!(d.login, "root");
    assert_eq!(
        as_login(&h, "carol", "web", Some(""), "").await.login,
        "carol"
    );
    h.stop().await;
}

async fn logins_are_listed_validated_and_audited(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("bob").await;
    host(&h, "db").await;
    grant(
        &h,
        pb::PrincipalKind::User,
        "bob",
        "db",
        &["deploy", "root"],
    )
    .await;
    let mut c = h.client();

    let listed = c
        .list_accessible_targets(pb::ListAccessibleTargetsRequest {
            username: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].logins, strings(&["deploy", "root"]));
    assert!(!listed[0].default_login, "every grant lists logins");
    let grants = c
        .list_grants(pb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .grants;
    assert_eq!(grants[0].logins, strings(&["deploy", "root"]));

    for bad in ["-root", "ro ot", "a,b", ""] {
        let err = c
            .grant(pb::GrantRequest {
                principal_kind: pb::PrincipalKind::User.into(),
                principal: "bob".into(),
                target: "db".into(),
                logins: vec![bad.into()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert!(err.message().contains("login"), "{}", err.message());
    }
    let err = c
        .authorize(pb::AuthorizeRequest {
            username: "bob".into(),
            target: "db".into(),
            action: "shell".into(),
            login: Some("ro/ot".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    as_login(&h, "bob", "db", Some("admin"), "").await;
    let events: Vec<serde_json::Value> = h
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "authorize")
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    for (event, cached) in events.iter().zip([false, true]) {
        assert_eq!(event["allowed"], false);
        assert_eq!(event["reason"], "login not allowed");
        assert_eq!(event["login"], "admin");
        assert_eq!(event["cached"], cached);
    }
    h.stop().await;
}
