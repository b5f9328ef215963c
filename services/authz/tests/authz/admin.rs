//! Admin operations: SSH keys (with `ssh-keygen` keys), passwords, user
//! removal, groups; on both stacks.

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    keys_add_list_remove_verify,
    set_password_ends_sessions,
    remove_user_takes_everything,
    groups_list_members,
);

/// A fresh key from `ssh-keygen`: (authorized_keys line, `ssh-keygen -lf` fingerprint).
fn keygen(kind: &str) -> (String, String) {
    let dir = tempfile_dir();
    let path = dir.join("id");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "me@laptop", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let line = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(path.with_extension("pub"))
        .output()
        .unwrap();
    let fingerprint = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let _ = std::fs::remove_dir_all(&dir);
    (line.trim().to_owned(), fingerprint)
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pp-keys-{}", phirepass_store::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn keys_add_list_remove_verify(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    h.create_user("bob").await;
    let mut c = h.client();
    let (ed, ed_fp) = keygen("ed25519");
    let (rsa, rsa_fp) = keygen("rsa");
    let (ecdsa, ecdsa_fp) = keygen("ecdsa");
    for (line, fp) in [(&ed, &ed_fp), (&rsa, &rsa_fp), (&ecdsa, &ecdsa_fp)] {
        let key = c
            .add_user_key(pb::AddUserKeyRequest {
                username: "alice".into(),
                public_key: line.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&key.fingerprint, fp);
        assert_eq!(key.comment, "me@laptop");
    }
    let err = c
        .add_user_key(pb::AddUserKeyRequest {
            username: "alice".into(),
            public_key: ed.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = c
        .add_user_key(pb::AddUserKeyRequest {
            username: "alice".into(),
            public_key: "ssh-ed25519 garbage".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let keys = c
        .list_user_keys(pb::ListUserKeysRequest {
            username: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .keys;
    // Ordered by creation time; keys added within one millisecond tie, so compare as a set.
    let mut fps: Vec<_> = keys.iter().map(|k| k.fingerprint.clone()).collect();
    fps.sort();
    let mut expected = vec![ed_fp.clone(), rsa_fp.clone(), ecdsa_fp.clone()];
    expected.sort();
    assert_eq!(fps, expected);

    let verify = |username: &'static str, key: String| {
        let mut c = h.client();
        async move {
            c.verify_user_key(pb::VerifyUserKeyRequest {
                username: username.into(),
                public_key: key,
                client_ip: None,
            })
            .await
            .map(tonic::Response::into_inner)
        }
    };
    // The edge offers the bare key (no comment).
    let bare = ed.rsplit_once(' ').unwrap().0.to_owned();
    let ok = verify("alice", bare.clone()).await.unwrap();
    assert_eq!(ok.user.unwrap().username, "alice");
    assert_eq!(ok.fingerprint, ed_fp);
    assert_eq!(
        verify("bob", bare.clone()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        verify("nobody", bare.clone()).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    c.remove_user_key(pb::RemoveUserKeyRequest {
        username: "alice".into(),
        fingerprint: ed_fp.clone(),
    })
    .await
    .unwrap();
    let err = c
        .remove_user_key(pb::RemoveUserKeyRequest {
            username: "alice".into(),
            fingerprint: ed_fp.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        verify("alice", bare).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // A disabled user's keys stop verifying.
    c.set_user_disabled(pb::SetUserDisabledRequest {
        username: "alice".into(),
        disabled: true,
    })
    .await
    .unwrap();
    assert_eq!(
        verify("alice", rsa).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    h.stop().await;
}

async fn set_password_ends_sessions(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    let session = h.login("alice", PASSWORD).await.unwrap().session_token;
    let mut c = h.client();
    let err = c
        .set_password(pb::SetPasswordRequest {
            username: "alice".into(),
            password: "short".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    c.set_password(pb::SetPasswordRequest {
        username: "alice".into(),
        password: "a brand new password".into(),
    })
    .await
    .unwrap();
    let err = c
        .verify_session(pb::VerifySessionRequest {
            session_token: session,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(h.login("alice", PASSWORD).await.is_err());
    assert!(h.login("alice", "a brand new password").await.is_ok());
    let err = c
        .set_password(pb::SetPasswordRequest {
            username: "nobody".into(),
            password: "a brand new password".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    h.stop().await;
}

async fn remove_user_takes_everything(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    let node = h.node_token("alice", "web", None).await.unwrap();
    let session = h.login("alice", PASSWORD).await.unwrap().session_token;
    let mut c = h.client();
    c.remove_user(pb::RemoveUserRequest {
        username: "alice".into(),
    })
    .await
    .unwrap();
    let err = c
        .remove_user(pb::RemoveUserRequest {
            username: "alice".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(h.verify_node(&node.token).await.is_err());
    assert!(
        c.verify_session(pb::VerifySessionRequest {
            session_token: session
        })
        .await
        .is_err()
    );
    let users = c
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(users.users.is_empty());
    // The node's name is free again.
    c.add_host(pb::AddHostRequest {
        name: "web".into(),
        ip: "10.0.0.1".into(),
        port: 22,
    })
    .await
    .unwrap();
    h.stop().await;
}

async fn groups_list_members(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    h.create_user("bob").await;
    let mut c = h.client();
    c.create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    let err = c
        .create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    for user in ["bob", "alice", "alice"] {
        c.add_group_member(pb::AddGroupMemberRequest {
            group: "ops".into(),
            username: user.into(),
        })
        .await
        .unwrap();
    }
    let err = c
        .add_group_member(pb::AddGroupMemberRequest {
            group: "ops".into(),
            username: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let members = c
        .list_group_members(pb::ListGroupMembersRequest {
            group: "ops".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    let names: Vec<_> = members.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, vec!["alice", "bob"]);
    let groups = c
        .list_groups(pb::ListGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].member_count, 2);
    let err = c
        .remove_group_member(pb::RemoveGroupMemberRequest {
            group: "nope".into(),
            username: "bob".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    h.stop().await;
}
