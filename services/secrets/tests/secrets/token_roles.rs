//! On the vault's admin surface an API token's scope is capped by its
//! user's role: a demoted admin's tokens (admin or read scope) are refused
//! once the short verification cache expires, a non-admin's token never
//! lists a vault entry, and a disabled user's token stops working.

use std::time::Duration;

use phirepass_proto::authz as az;
use phirepass_proto::secrets as pb;
use phirepass_store::Store;
use tonic::Code;

use crate::api_tokens::stack;

phirepass_store::on_both_stores!(
    demoted_admin_tokens_lose_the_vault,
    non_admin_tokens_never_see_the_vault
);

fn assert_not_admin<T: std::fmt::Debug>(got: Result<T, tonic::Status>, what: &str) {
    let err = got.expect_err(what);
    assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
    assert!(err.message().contains("not an admin"), "{what}: {err:?}");
}

async fn demoted_admin_tokens_lose_the_vault(store: Store) {
    let s = stack(store, true).await;
    let admin = s.as_token(&s.api_token("ops", &["admin"]).await.token);
    let read = s.as_token(&s.api_token("ops", &["read"]).await.token);
    admin
        .clone()
        .list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap();
    read.clone()
        .list_options(pb::ListOptionsRequest { host: "db".into() })
        .await
        .unwrap();

    s.set_admin("ops", false).await;
    // Trusted for at most the cache TTL (500 ms here), then capped.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_not_admin(
        admin
            .clone()
            .set_option(pb::SetOptionRequest {
                host: "db".into(),
                key: "auth.username".into(),
                value: "deploy".into(),
            })
            .await,
        "a demoted admin's admin token changing the vault",
    );
    for c in [&admin, &read] {
        assert_not_admin(
            c.clone()
                .list_credentials(pb::ListCredentialsRequest {})
                .await,
            "a demoted admin's token listing credentials",
        );
    }

    // Promoted again, the same token works; disabled, it stops.
    s.set_admin("ops", true).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    admin
        .clone()
        .list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap();
    s.authz
        .clone()
        .set_user_disabled(az::SetUserDisabledRequest {
            username: "ops".into(),
            disabled: true,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let err = admin
        .clone()
        .list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

async fn non_admin_tokens_never_see_the_vault(store: Store) {
    let s = stack(store, true).await;
    s.api_token("eve", &["read"]).await;
    s.set_admin("eve", false).await;
    for scope in ["read", "admin"] {
        let mut c = s.as_token(&s.api_token("eve", &[scope]).await.token);
        assert_not_admin(
            c.list_credentials(pb::ListCredentialsRequest {}).await,
            "credentials",
        );
        assert_not_admin(
            c.list_options(pb::ListOptionsRequest { host: "db".into() })
                .await,
            "a host's options",
        );
        assert_not_admin(
            c.rotation_status(pb::RotationStatusRequest {}).await,
            "rotation status",
        );
    }
}
