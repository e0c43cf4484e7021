//! Approval gates against real storage: quorum from distinct people, any
//! deny rejects, no self-approval, the plan digest, required comments and
//! input, timeouts that expire, approve or escalate, reminders — and that
//! a refused decision writes nothing.

use cordon_runtime::approval::{ApprovalError, Ballot, Person, Verdict};
use cordon_storage::{ApprovalFilter, DeviceRecord};

use cordon_runtime::Clock as _;

use crate::common::*;

const QUORUM: &str = r#"
cordon: v1
name: quorum
version: 1.0.0
inputs:
  line: {type: string, default: line-3}
steps:
  - id: quarantine
    uses: isolate@1
    with: {device: plc-1}
  - id: approve
    needs: [quarantine]
    approval:
      approvers: {roles: [security-lead], users: [carol]}
      min: 2
      require_comment: true
      input:
        ticket: {type: string}
      timeout: 30m
      on_timeout: escalate
      escalate: {approvers: {groups: [plant-managers]}, timeout: 1h}
      remind_every: 10m
      message: 'Roll back line ${{ inputs.line }}?'
  - id: rollback
    needs: [approve]
    foreach: {items: '${{ inventory.select("tag=" + inputs.line) }}'}
    uses: rollback-firmware@1
    with: {device: '${{ item.id }}', image: safe-2.4.1}
"#;

fn person(user: &str, roles: &[&str], groups: &[&str]) -> Person {
    Person {
        user: user.into(),
        groups: groups.iter().map(ToString::to_string).collect(),
        roles: roles.iter().map(ToString::to_string).collect(),
    }
}

fn device(id: &str, tag: &str) -> DeviceRecord {
    DeviceRecord {
        id: id.into(),
        device_type: "plc".into(),
        site: "plant-a".into(),
        tags: vec![tag.into()],
        criticality: "high".into(),
        firmware: "2.5.0".into(),
        cert_serial: None,
        owner: "ot".into(),
        drill: false,
    }
}

fn ballot(request: &str, digest: &str, verdict: Verdict, comment: &str) -> Ballot {
    Ballot {
        request: request.into(),
        verdict,
        comment: Some(comment.into()),
        input: [("ticket".to_string(), json!("INC-1"))].into(),
        plan_digest: digest.into(),
        channel: "api".into(),
        link: None,
    }
}

/// Publishes QUORUM with two line-3 devices, starts a run as alice and
/// drives it to the gate; returns the request id.
async fn at_gate(store: &Store, engine: &Engine) -> (String, String) {
    publish(store, QUORUM).await;
    store
        .upsert_devices(
            &[device("plc-1", "line-3"), device("plc-2", "line-3")],
            start(),
        )
        .await
        .expect("inventory");
    let run = engine
        .start_run(request("quorum", json!({})))
        .await
        .expect("start");
    assert_eq!(
        engine.drive(&run).await.expect("drive"),
        Progress::Blocked {
            until: Some(start() + chrono::Duration::minutes(10))
        }
    );
    let request = store
        .approval_of_step(&run, "approve")
        .await
        .expect("read")
        .expect("request");
    (run, request.id)
}

on_both_backends!(
    a_gate_opens_a_request_bound_to_its_plan_and_needs_two_distinct_approvals,
    |store: Store| async move {
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let (run, id) = at_gate(&store, &engine).await;
        let request = engine.approval(&id).await.expect("request");
        assert_eq!(request.message, "Roll back line line-3?");
        assert_eq!(request.initiator.as_deref(), Some("alice"));
        assert_eq!(request.plan["devices"], json!(["plc-1", "plc-2"]));
        assert_eq!(request.plan["steps"][0]["id"], "rollback");
        assert_eq!(request.plan["steps"][0]["uses"], "rollback-firmware@1");
        assert!(request.plan_digest.starts_with("sha256:"));
        // The request mail is queued with the request, in the same commit.
        let queued = store.due_notifications(start(), 10).await.expect("outbox");
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].kind, "approval_request");

        let digest = request.plan_digest.clone();
        let bob = person("bob", &["security-lead"], &[]);
        let standing = engine
            .decide_approval(&bob, &ballot(&id, &digest, Verdict::Approve, "ok"))
            .await
            .expect("bob approves");
        assert_eq!(
            (standing.status.as_str(), standing.approvals, standing.min),
            ("pending", 1, 2)
        );
        // The same person twice does not make a quorum.
        let again = engine
            .decide_approval(&bob, &ballot(&id, &digest, Verdict::Approve, "ok again"))
            .await;
        assert!(
            matches!(again, Err(ApprovalError::AlreadyDecided { .. })),
            "{again:?}"
        );
        let carol = person("carol", &[], &[]);
        let standing = engine
            .decide_approval(&carol, &ballot(&id, &digest, Verdict::Approve, "go"))
            .await
            .expect("carol approves");
        assert_eq!(standing.status, "approved");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        let gate = store.run(&run).await.expect("read").expect("run").steps;
        let gate = gate.iter().find(|s| s.key == "approve").expect("gate");
        let outputs = gate.outputs.clone().expect("outputs");
        assert_eq!(outputs["approvers"], json!(["bob", "carol"]));
        assert_eq!(outputs["ticket"], "INC-1");
        let closed = engine.approval(&id).await.expect("request");
        assert_eq!(closed.status, "approved");
        assert_eq!(closed.decisions.len(), 2);
        // Every decision is an audit event, by the person who made it.
        let events = store
            .audit_events(&cordon_storage::EventFilter {
                run: Some(run.clone()),
                ..Default::default()
            })
            .await
            .expect("events");
        let decisions: Vec<&str> = events
            .iter()
            .filter(|e| e.event.kind == "approval.decision")
            .map(|e| e.event.actor.as_str())
            .collect();
        assert_eq!(decisions, ["user:bob", "user:carol"]);
        assert!(events.iter().any(|e| e.event.kind == "approval.approved"));
    }
);

on_both_backends!(
    any_deny_rejects_and_refused_decisions_write_nothing,
    |store: Store| async move {
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let (run, id) = at_gate(&store, &engine).await;
        let digest = engine.approval(&id).await.expect("request").plan_digest;
        let size = store.audit_size().await.expect("size");
        // alice started the run: she may not approve it, even holding the role.
        let alice = person("alice", &["security-lead"], &[]);
        let refused = engine
            .decide_approval(&alice, &ballot(&id, &digest, Verdict::Approve, "mine"))
            .await;
        assert!(
            matches!(refused, Err(ApprovalError::SelfApproval { .. })),
            "{refused:?}"
        );
        // Not named by the gate.
        let mallory = person("mallory", &["responder"], &["ops"]);
        let refused = engine
            .decide_approval(&mallory, &ballot(&id, &digest, Verdict::Approve, "x"))
            .await;
        assert!(
            matches!(refused, Err(ApprovalError::NotAnApprover { .. })),
            "{refused:?}"
        );
        // No comment where one is required; input missing; a stale digest.
        let bob = person("bob", &["security-lead"], &[]);
        let refused = engine
            .decide_approval(&bob, &ballot(&id, &digest, Verdict::Approve, "  "))
            .await;
        assert!(
            matches!(refused, Err(ApprovalError::CommentRequired)),
            "{refused:?}"
        );
        let mut no_ticket = ballot(&id, &digest, Verdict::Approve, "ok");
        no_ticket.input.clear();
        let refused = engine.decide_approval(&bob, &no_ticket).await;
        assert!(
            matches!(refused, Err(ApprovalError::InvalidInput(_))),
            "{refused:?}"
        );
        let refused = engine
            .decide_approval(&bob, &ballot(&id, "sha256:00", Verdict::Approve, "ok"))
            .await;
        assert!(
            matches!(refused, Err(ApprovalError::PlanChanged { .. })),
            "{refused:?}"
        );
        assert_eq!(
            store.audit_size().await.expect("size"),
            size,
            "refusals write nothing"
        );
        assert!(
            engine
                .approval(&id)
                .await
                .expect("request")
                .decisions
                .is_empty()
        );

        engine
            .decide_approval(&bob, &ballot(&id, &digest, Verdict::Approve, "ok"))
            .await
            .expect("bob approves");
        let carol = person("carol", &[], &[]);
        let standing = engine
            .decide_approval(&carol, &ballot(&id, &digest, Verdict::Deny, "wrong line"))
            .await
            .expect("carol denies");
        assert_eq!(standing.status, "rejected");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        assert!(
            !executor
                .calls()
                .iter()
                .any(|c| c.step.starts_with("rollback"))
        );
        let late = engine
            .decide_approval(
                &person("dave", &["security-lead"], &[]),
                &ballot(&id, &digest, Verdict::Approve, "late"),
            )
            .await;
        assert!(
            matches!(late, Err(ApprovalError::Closed { .. })),
            "{late:?}"
        );
    }
);

on_both_backends!(
    a_changed_plan_voids_earlier_approvals,
    |store: Store| async move {
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let (_run, id) = at_gate(&store, &engine).await;
        let first = engine.approval(&id).await.expect("request").plan_digest;
        let bob = person("bob", &["security-lead"], &[]);
        engine
            .decide_approval(&bob, &ballot(&id, &first, Verdict::Approve, "ok"))
            .await
            .expect("bob approves");
        // A third device joins line 3: the rollout would touch it too.
        store
            .upsert_devices(&[device("plc-9", "line-3")], start())
            .await
            .expect("inventory");
        let carol = person("carol", &[], &[]);
        let refused = engine
            .decide_approval(&carol, &ballot(&id, &first, Verdict::Approve, "go"))
            .await;
        let Err(ApprovalError::PlanChanged { current }) = refused else {
            panic!("{refused:?}")
        };
        assert_ne!(current, first);
        let request = engine.approval(&id).await.expect("request");
        assert_eq!(request.plan["devices"], json!(["plc-1", "plc-2", "plc-9"]));
        // Carol approves the new plan: bob's approval was for the old one.
        let standing = engine
            .decide_approval(&carol, &ballot(&id, &current, Verdict::Approve, "go"))
            .await
            .expect("carol approves");
        assert_eq!(
            (standing.status.as_str(), standing.approvals),
            ("pending", 1)
        );
        let standing = engine
            .decide_approval(&bob, &ballot(&id, &current, Verdict::Approve, "still ok"))
            .await
            .expect("bob approves again");
        assert_eq!(standing.status, "approved");
        let kinds: Vec<String> = store
            .audit_events(&cordon_storage::EventFilter::default())
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.event.kind)
            .collect();
        assert!(kinds.iter().any(|k| k == "approval.plan_changed"));
    }
);

on_both_backends!(
    a_timeout_escalates_reminds_and_then_expires,
    |store: Store| async move {
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let (run, id) = at_gate(&store, &engine).await;
        // Two reminders (10m, 20m) then the timeout (30m) escalates.
        for _ in 0..3 {
            clock.advance(Duration::from_secs(600));
            engine.drive(&run).await.expect("drive");
        }
        let request = engine.approval(&id).await.expect("request");
        assert_eq!((request.status.as_str(), request.stage), ("pending", 1));
        assert_eq!(request.approvers, json!({"groups": ["plant-managers"]}));
        let kinds: Vec<String> = store
            .due_notifications(clock.now(), 10)
            .await
            .expect("outbox")
            .into_iter()
            .map(|n| n.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "approval_request",
                "approval_reminder",
                "approval_reminder",
                "approval_escalated"
            ]
        );
        // The first approvers no longer decide; the escalation group does.
        let digest = request.plan_digest.clone();
        let bob = person("bob", &["security-lead"], &[]);
        let refused = engine
            .decide_approval(&bob, &ballot(&id, &digest, Verdict::Approve, "ok"))
            .await;
        assert!(
            matches!(refused, Err(ApprovalError::NotAnApprover { .. })),
            "{refused:?}"
        );
        // Nobody decides within the escalation's hour: the gate expires and the run fails.
        clock.advance(Duration::from_secs(3600));
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        assert_eq!(
            engine.approval(&id).await.expect("request").status,
            "expired"
        );
    }
);

on_both_backends!(
    the_escalation_group_can_approve,
    |store: Store| async move {
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let (run, id) = at_gate(&store, &engine).await;
        clock.advance(Duration::from_secs(1800));
        engine.drive(&run).await.expect("drive");
        let digest = engine.approval(&id).await.expect("request").plan_digest;
        for user in ["erin", "frank"] {
            engine
                .decide_approval(
                    &person(user, &[], &["plant-managers"]),
                    &ballot(&id, &digest, Verdict::Approve, "escalated ok"),
                )
                .await
                .expect("approve");
        }
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        let pending = store
            .approvals(&ApprovalFilter {
                status: Some("pending".into()),
                run: None,
            })
            .await
            .expect("list");
        assert!(pending.is_empty());
    }
);

on_both_backends!(
    cancelling_a_run_closes_its_pending_request,
    |store: Store| async move {
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let (run, id) = at_gate(&store, &engine).await;
        engine.cancel(&run, "alice").await.expect("cancel");
        let request = engine.approval(&id).await.expect("request");
        assert_eq!(request.status, "cancelled");
        let digest = request.plan_digest.clone();
        let refused = engine
            .decide_approval(
                &person("bob", &["security-lead"], &[]),
                &ballot(&id, &digest, Verdict::Approve, "ok"),
            )
            .await;
        assert!(
            matches!(refused, Err(ApprovalError::Closed { .. })),
            "{refused:?}"
        );
    }
);
