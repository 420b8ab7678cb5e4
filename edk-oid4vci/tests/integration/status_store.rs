//! The status list store on PostgreSQL and SQLite: indices handed out once under concurrency
//! and across replicas, a new list when one fills, all-or-nothing status changes, tenant
//! isolation, and the compare-and-set publication of tokens.

use std::collections::HashSet;

use edk_core::status_list::Bits;
use edk_oid4vci::status::{
    CredentialSelector, CredentialStatus, PublishedToken, StatusAction, StatusListSpec,
    StatusPurpose,
};
use edk_oid4vci::store::{IssuedFilter, NewIssuedCredential, StatusStore, StatusUpdate};
use edk_tenancy::TenantContext;

use crate::store::Backend;

const NOW: i64 = 1_800_000_000;

fn spec(size: u32, bits: Bits) -> StatusListSpec {
    StatusListSpec {
        configuration_id: "identity".to_owned(),
        purpose: if bits == Bits::One {
            StatusPurpose::Revocation
        } else {
            StatusPurpose::Suspension
        },
        bits,
        size,
        issuer: "https://issuer.example/acme".to_owned(),
        uri_base: "https://issuer.example/acme/status-lists".to_owned(),
    }
}

/// Issues `count` credentials of session `session` on `spec`'s lists: their (list, index).
async fn issue(
    store: &edk_oid4vci::SqlStore,
    tenant: &TenantContext,
    spec: &StatusListSpec,
    session: &str,
    count: usize,
) -> Vec<(String, u32)> {
    let mut issued = Vec::with_capacity(count);
    let mut records = Vec::with_capacity(count);
    let indices = store
        .allocate_status_indices(tenant, spec, u32::try_from(count).unwrap(), NOW)
        .await
        .unwrap();
    assert_eq!(indices.len(), count);
    for (n, index) in indices.into_iter().enumerate() {
        records.push(NewIssuedCredential {
            credential_id: format!("{session}-{n}"),
            session_id: session.to_owned(),
            correlation_id: Some(format!("corr-{session}")),
            configuration_id: spec.configuration_id.clone(),
            list_id: index.list_id.clone(),
            index: index.index,
            issued_at: NOW,
            expires_at: None,
        });
        issued.push((index.list_id, index.index));
    }
    store.record_issued(tenant, &records).await.unwrap();
    issued
}

async fn indices_are_handed_out_once_by_concurrent_issuers_on_two_replicas(backend: Backend) {
    let tenant = backend.tenant("acme").await;
    let stores = [
        edk_oid4vci::SqlStore::new(backend.tenancy.clone()),
        edk_oid4vci::SqlStore::new(backend.replica.clone()),
    ];
    let spec = spec(64, Bits::One);
    let tasks = (0..32).map(|n| {
        let store = stores[n % 2].clone();
        let tenant = tenant.clone();
        let spec = spec.clone();
        tokio::spawn(async move { issue(&store, &tenant, &spec, &format!("s{n}"), 5).await })
    });
    let mut seen = HashSet::new();
    for task in futures::future::join_all(tasks).await {
        for (list, index) in task.unwrap() {
            assert!(index < 64);
            assert!(seen.insert((list, index)), "an index was handed out twice");
        }
    }
    assert_eq!(seen.len(), 160);
    // 160 credentials on lists of 64: two full lists and a third one opened.
    let lists = stores[0].status_lists(&tenant).await.unwrap();
    let mut allocated: Vec<u32> = lists.iter().map(|list| list.allocated).collect();
    allocated.sort_unstable();
    assert_eq!(allocated, [32, 64, 64]);
    backend.close().await;
}
crate::store::on_both_backends!(indices_are_handed_out_once_by_concurrent_issuers_on_two_replicas);

async fn status_changes_are_all_or_nothing_and_stay_in_their_tenant(backend: Backend) {
    let acme = backend.tenant("acme").await;
    let globex = backend.tenant("globex").await;
    let store = edk_oid4vci::SqlStore::new(backend.tenancy.clone());
    let revocation = spec(64, Bits::One);
    let suspension = StatusListSpec {
        configuration_id: "badge".to_owned(),
        ..spec(64, Bits::Two)
    };
    let issued = issue(&store, &acme, &revocation, "rev", 2).await;
    issue(&store, &acme, &suspension, "sus", 2).await;

    // Suspension on a revocation list changes nothing.
    let refused = store
        .set_credential_status(
            &acme,
            &CredentialSelector::Session("rev".to_owned()),
            StatusAction::Suspend,
            NOW,
        )
        .await
        .unwrap();
    assert!(matches!(refused, StatusUpdate::Refused(_)), "{refused:?}");

    // Another tenant cannot touch acme's credentials, nor see them.
    let foreign = store
        .set_credential_status(
            &globex,
            &CredentialSelector::Credential("rev-0".to_owned()),
            StatusAction::Revoke,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(foreign, StatusUpdate::NotFound);
    let filter = IssuedFilter {
        limit: 100,
        ..IssuedFilter::default()
    };
    assert!(
        store
            .issued_credentials(&globex, &filter)
            .await
            .unwrap()
            .is_empty()
    );

    // Revoking one of a session, then the session: the revoked one stays revoked.
    let before = store.status_lists(&acme).await.unwrap();
    let StatusUpdate::Updated(one) = store
        .set_credential_status(
            &acme,
            &CredentialSelector::Credential("rev-0".to_owned()),
            StatusAction::Revoke,
            NOW + 1,
        )
        .await
        .unwrap()
    else {
        panic!("revocation refused")
    };
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].status, CredentialStatus::Revoked);
    assert_eq!((one[0].list_id.clone(), one[0].index), issued[0].clone());
    let after = store.status_lists(&acme).await.unwrap();
    let changed = |lists: &[edk_oid4vci::StatusListInfo]| {
        lists
            .iter()
            .find(|list| list.list_id == issued[0].0)
            .map(|list| list.version)
            .unwrap()
    };
    assert_eq!(changed(&after), changed(&before) + 1);

    // Suspend a session of the suspension list, reinstate it; a revoked one cannot come back.
    let by_correlation = CredentialSelector::Correlation("corr-sus".to_owned());
    let StatusUpdate::Updated(suspended) = store
        .set_credential_status(&acme, &by_correlation, StatusAction::Suspend, NOW + 2)
        .await
        .unwrap()
    else {
        panic!("suspension refused")
    };
    assert!(
        suspended
            .iter()
            .all(|c| c.status == CredentialStatus::Suspended)
    );
    store
        .set_credential_status(
            &acme,
            &CredentialSelector::Credential("sus-0".to_owned()),
            StatusAction::Revoke,
            NOW + 3,
        )
        .await
        .unwrap();
    let refused = store
        .set_credential_status(&acme, &by_correlation, StatusAction::Reinstate, NOW + 4)
        .await
        .unwrap();
    assert!(matches!(refused, StatusUpdate::Refused(_)));
    let sus1 = store
        .issued_credentials(
            &acme,
            &IssuedFilter {
                selectors: vec![CredentialSelector::Credential("sus-1".to_owned())],
                limit: 10,
                ..IssuedFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        sus1[0].status,
        CredentialStatus::Suspended,
        "nothing changed"
    );

    // The entries of a list are those not valid.
    let (_, entries) = store
        .status_list_entries(&acme, &issued[0].0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entries, vec![(issued[0].1, CredentialStatus::Revoked)]);
    backend.close().await;
}
crate::store::on_both_backends!(status_changes_are_all_or_nothing_and_stay_in_their_tenant);

async fn a_token_is_published_once_per_version_read(backend: Backend) {
    let tenant = backend.tenant("acme").await;
    let store = edk_oid4vci::SqlStore::new(backend.tenancy.clone());
    let replica = edk_oid4vci::SqlStore::new(backend.replica.clone());
    let issued = issue(&store, &tenant, &spec(64, Bits::One), "s", 1).await;
    let list = store
        .status_list(&tenant, &issued[0].0)
        .await
        .unwrap()
        .unwrap();
    let token = |iat: i64| PublishedToken {
        list_id: list.list_id.clone(),
        version: list.version,
        iat,
        exp: iat + 100,
        ttl: 10,
        jwt: format!("jwt-{iat}"),
        cwt: vec![1, 2, 3],
    };
    // Two publishers read the same state: one wins.
    assert!(
        store
            .save_published(&tenant, &token(NOW), &list)
            .await
            .unwrap()
    );
    assert!(
        !replica
            .save_published(&tenant, &token(NOW + 1), &list)
            .await
            .unwrap()
    );
    let current = store
        .published_token(&tenant, &list.list_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.jwt, format!("jwt-{NOW}"));
    assert_eq!(current.cwt, vec![1, 2, 3]);
    // The next publication over the new state, and history by time.
    let list = store
        .status_list(&tenant, &list.list_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list.published_version, Some(0));
    assert!(!list.needs_publication(NOW + 10, 100));
    assert!(
        list.needs_publication(NOW + 60, 100),
        "past half its validity"
    );
    assert!(
        store
            .save_published(&tenant, &token(NOW + 50), &list)
            .await
            .unwrap()
    );
    // The same version again in the same second: saved once, no conflict.
    let list = store
        .status_list(&tenant, &list.list_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .save_published(&tenant, &token(NOW + 50), &list)
            .await
            .unwrap()
    );
    let at = |time| store.published_token(&tenant, &list.list_id, Some(time));
    assert_eq!(at(NOW + 10).await.unwrap().unwrap().iat, NOW);
    assert_eq!(at(NOW + 60).await.unwrap().unwrap().iat, NOW + 50);
    assert!(at(NOW - 1).await.unwrap().is_none());
    // Purging keeps the newest token of each list.
    assert_eq!(store.purge_published(&tenant, NOW + 1000).await.unwrap(), 1);
    assert!(
        store
            .published_token(&tenant, &list.list_id, None)
            .await
            .unwrap()
            .is_some()
    );
    backend.close().await;
}
crate::store::on_both_backends!(a_token_is_published_once_per_version_read);

/// 100,000 credentials on one list of 100,000, in batches of 1,000 and one by one: every
/// index once, and the list then full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_100000_hands_out_every_index_once() {
    let backend = Backend::sqlite().await;
    let tenant = backend.tenant("acme").await;
    let store = edk_oid4vci::SqlStore::new(backend.tenancy.clone());
    let spec = spec(100_000, Bits::One);
    let mut seen = vec![false; 100_000];
    let mut list_id = None;
    let mut take = |indices: Vec<edk_oid4vci::status::StatusIndex>| {
        for index in indices {
            assert!(list_id.get_or_insert_with(|| index.list_id.clone()) == &index.list_id);
            let slot = &mut seen[usize::try_from(index.index).unwrap()];
            assert!(!*slot, "index {} handed out twice", index.index);
            *slot = true;
        }
    };
    for _ in 0..999 {
        take(
            store
                .allocate_status_indices(&tenant, &spec, 100, NOW)
                .await
                .unwrap(),
        );
    }
    for _ in 0..100 {
        take(
            store
                .allocate_status_indices(&tenant, &spec, 1, NOW)
                .await
                .unwrap(),
        );
    }
    assert!(seen.iter().all(|taken| *taken));
    let next = store
        .allocate_status_indices(&tenant, &spec, 3, NOW)
        .await
        .unwrap();
    assert_eq!(next.len(), 3);
    assert!(
        next.iter()
            .all(|index| Some(&index.list_id) != list_id.as_ref()),
        "a full list opens the next"
    );
    backend.close().await;
}

async fn concurrent_status_changes_all_succeed(backend: Backend) {
    let tenant = backend.tenant("acme").await;
    let store = edk_oid4vci::SqlStore::new(backend.tenancy.clone());
    let issued = issue(&store, &tenant, &spec(64, Bits::Two), "s", 48).await;
    let changes = (0..48).map(|n| {
        let store = store.clone();
        let tenant = tenant.clone();
        tokio::spawn(async move {
            let action = if n % 2 == 0 {
                StatusAction::Revoke
            } else {
                StatusAction::Suspend
            };
            store
                .set_credential_status(
                    &tenant,
                    &CredentialSelector::Credential(format!("s-{n}")),
                    action,
                    NOW,
                )
                .await
        })
    });
    for change in futures::future::join_all(changes).await {
        assert!(
            matches!(change.unwrap(), Ok(StatusUpdate::Updated(_))),
            "a concurrent status change failed"
        );
    }
    let (list, entries) = store
        .status_list_entries(&tenant, &issued[0].0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entries.len(), 48);
    assert_eq!(list.version, 48, "one version per change");
    backend.close().await;
}
crate::store::on_both_backends!(concurrent_status_changes_all_succeed);
