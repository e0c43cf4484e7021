//! API tokens on SQLite and PostgreSQL: stored hashed, checked by hash,
//! expired and revoked tokens refused, every creation and revocation an
//! audit event in the same transaction that never carries the secret.

use chrono::{Duration, TimeZone, Utc};
use cordon_storage::{
    EventFilter, NewToken, Revocation, StorageError, Store, TokenCheck, TokenStatus,
    on_both_backends, parse_token,
};

fn at(second: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0)
        .single()
        .expect("time")
        + Duration::seconds(second)
}

fn new_token(user: &str, role: &str, expires_at: Option<chrono::DateTime<Utc>>) -> NewToken {
    NewToken {
        user: user.into(),
        role: role.into(),
        name: format!("{user} laptop"),
        expires_at,
        created_by: "root".into(),
    }
}

on_both_backends!(
    a_token_is_stored_hashed_and_checked_by_its_secret,
    |store: Store| async move {
        let issued = store
            .create_token(new_token("alice", "responder", None), at(0))
            .await
            .expect("create");
        let (id, secret) = parse_token(&issued.token).expect("well formed");
        assert_eq!(id, issued.record.id);
        assert!(
            !format!("{issued:?}").contains(secret),
            "Debug never shows the secret"
        );
        let TokenCheck::Valid(found) = store
            .check_token(&issued.token, at(1))
            .await
            .expect("check")
        else {
            panic!("the issued token is valid");
        };
        assert_eq!(found, issued.record);
        assert_eq!(found.user, "alice");
        assert_eq!(found.role, "responder");

        // Another secret under the same id, a malformed token, an unknown id.
        let mut forged = issued.token.clone();
        let last = forged.pop().expect("char");
        forged.push(if last == '0' { '1' } else { '0' });
        let unknown = format!("cordon_{}_{secret}", "f".repeat(16));
        for bad in [forged.as_str(), "cordon_x_y", "", unknown.as_str()] {
            assert_eq!(
                store.check_token(bad, at(1)).await.expect("check"),
                TokenCheck::Invalid,
                "{bad}"
            );
        }

        let by_id = store.token_by_id(id).await.expect("read").expect("present");
        assert_eq!(by_id, issued.record);
        assert_eq!(store.token_by_id("nope").await.expect("read"), None);
    }
);

on_both_backends!(
    expired_and_revoked_tokens_are_refused,
    |store: Store| async move {
        let short = store
            .create_token(new_token("bob", "viewer", Some(at(10))), at(0))
            .await
            .expect("create");
        assert!(matches!(
            store.check_token(&short.token, at(9)).await.expect("check"),
            TokenCheck::Valid(_)
        ));
        assert!(matches!(
            store
                .check_token(&short.token, at(10))
                .await
                .expect("check"),
            TokenCheck::Expired(_)
        ));
        assert_eq!(short.record.status(at(11)), TokenStatus::Expired);

        let long = store
            .create_token(new_token("carol", "admin", None), at(0))
            .await
            .expect("create");
        let Revocation::Revoked(revoked) = store
            .revoke_token(&long.record.id, "root", at(5))
            .await
            .expect("revoke")
        else {
            panic!("first revocation revokes");
        };
        assert_eq!(revoked.revoked_at, Some(at(5)));
        assert_eq!(revoked.revoked_by.as_deref(), Some("root"));
        assert!(matches!(
            store.check_token(&long.token, at(6)).await.expect("check"),
            TokenCheck::Revoked(_)
        ));
        assert!(matches!(
            store
                .revoke_token(&long.record.id, "root", at(7))
                .await
                .expect("again"),
            Revocation::AlreadyRevoked(_)
        ));
        assert!(matches!(
            store.revoke_token("0000000000000000", "root", at(7)).await,
            Err(StorageError::NotFound(_))
        ));

        let listed = store.tokens().await.expect("list");
        assert_eq!(listed.len(), 2);
        // Both were created at the same instant: the list's order between
        // them is their random ids', so each is found by id.
        let status = |id: &str| listed.iter().find(|t| t.id == id).map(|t| t.status(at(20)));
        assert_eq!(status(&short.record.id), Some(TokenStatus::Expired));
        assert_eq!(status(&long.record.id), Some(TokenStatus::Revoked));
    }
);

on_both_backends!(
    creations_and_revocations_are_audited_without_the_secret,
    |store: Store| async move {
        let issued = store
            .create_token(new_token("alice", "approver", Some(at(3600))), at(0))
            .await
            .expect("create");
        store
            .revoke_token(&issued.record.id, "root", at(1))
            .await
            .expect("revoke");
        // A second revocation records nothing.
        store
            .revoke_token(&issued.record.id, "root", at(2))
            .await
            .expect("again");
        let events = store
            .audit_events(&EventFilter::default())
            .await
            .expect("events");
        let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.as_str()).collect();
        assert_eq!(kinds, ["token.created", "token.revoked"]);
        assert!(events.iter().all(|e| e.event.actor == "user:root"));
        assert_eq!(events[0].event.data["user"], "alice");
        assert_eq!(events[0].event.data["role"], "approver");
        assert_eq!(events[0].event.data["token"], issued.record.id.as_str());
        let (_, secret) = parse_token(&issued.token).expect("well formed");
        let hash = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(secret.as_bytes()))
        };
        for e in &events {
            let body = serde_json::to_string(&e.event).expect("json");
            assert!(!body.contains(secret) && !body.contains(&hash), "{body}");
        }
    }
);
