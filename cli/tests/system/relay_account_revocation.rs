//! A relay is re-checked for its account, not only its target (issue #9 finding 10): granting
//! the target again with logins that no longer include the account the relay logged in as
//! ends the relay, as Authorize would refuse that login now; a grant that still allows it
//! leaves the relay alone. Driven with the real OpenSSH client.

use std::time::Duration;

use phirepass_testkit::sshd::TEST_USER;

use crate::access_revocation::{ANNOUNCED_BOUND, ended, long_relay};
use crate::common::{ALICE, EdgeFixture, HOST};
use crate::ssh_edge_accounts::grant_logins;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_ends_when_its_grants_no_longer_allow_its_account() {
    // No periodic round within the test: authz's announcement starts each re-check.
    let f = EdgeFixture::start(|c| c.access_recheck_interval = Duration::from_secs(300)).await;
    let mut alice = f.alice();
    alice.log_level = "INFO";
    // The grant lists no login: the relay logs in as the vault's account, pptest.
    let mut relay = long_relay(&alice, &format!("{ALICE}:{HOST}")).await;

    // Still allowed: listed now. The round this grant starts leaves the relay alone.
    grant_logins(&f, HOST, &["deploy", TEST_USER]).await;
    tokio::time::sleep(ANNOUNCED_BOUND).await;
    assert!(
        relay.try_wait().expect("try_wait").is_none(),
        "a relay whose account is still granted ended"
    );

    // The target stays granted, the account does not.
    grant_logins(&f, HOST, &["deploy"]).await;
    let stderr = ended(relay, ANNOUNCED_BOUND).await;
    assert!(
        stderr.contains(&format!(
            "access revoked: you may no longer log in to {HOST} as {TEST_USER}"
        )),
        "{stderr}"
    );
}
