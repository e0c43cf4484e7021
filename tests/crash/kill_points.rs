//! One node, killed with SIGKILL at every persistence boundary of five
//! kinds of run (sequential, parallel, foreach, retries, compensation),
//! restarted, and checked: every run ends exactly as an uncrashed run of the
//! same playbook, and the ledger shows no lost, duplicated or concurrent
//! execution.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use cordon_storage::Store;
use cordon_storage::testing::TestStore;

use crate::support::{
    Outcome, SCENARIOS, Site, check_ledger, killed, now_nanos, outcome, wait_terminal,
};

/// Failpoints of the engine node and how many of their hits to try: every
/// one is a moment between two durable steps (before a commit, after it,
/// before an effect, after it, after taking a lease).
const POINTS: [(&str, u32); 7] = [
    ("store.claim.after", 1),
    ("store.commit.before", 4),
    ("store.commit.after", 4),
    ("engine.attempt.before_execute", 2),
    ("engine.attempt.after_execute", 2),
    ("engine.compensation.before_execute", 1),
    ("engine.compensation.after_execute", 1),
];

/// The lease of the node that is killed: its runs wait this long for a taker.
const LEASE: &str = "600ms";
const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_at_every_persistence_boundary() {
    let db = TestStore::sqlite().await.expect("sqlite");
    crash_everywhere(&db.store, &db.url, "sqlite").await;
    db.destroy().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill_at_every_persistence_boundary() {
    let db = TestStore::postgres().await.expect("postgres");
    crash_everywhere(&db.store, &db.url, "postgres").await;
    db.destroy().await.expect("cleanup");
}

async fn crash_everywhere(store: &Store, url: &str, backend: &str) {
    let site = Site::new(url);
    site.publish_scenarios();
    // What each playbook ends as when nothing crashes.
    let mut reference: BTreeMap<&str, Outcome> = BTreeMap::new();
    for scenario in SCENARIOS {
        let id = site.start_run(scenario);
        let worker = site.worker("reference", LEASE, None);
        wait_terminal(store, &id, LIMIT)
            .await
            .expect("reference run ends");
        worker.stop();
        reference.insert(scenario, outcome(store, &id).await);
    }
    assert_eq!(reference["compensation"].status, "failed");
    assert_eq!(
        reference["compensation"].steps["contain-a"].0,
        "compensated"
    );

    let mut reached: BTreeSet<String> = BTreeSet::new();
    let mut missed: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut deaths: HashMap<u32, u128> = HashMap::new();
    let mut trials: Vec<(String, String)> = Vec::new();
    let started = Instant::now();
    for scenario in SCENARIOS {
        for (point, hits) in POINTS {
            if point.starts_with("engine.compensation") && scenario != "compensation" {
                continue;
            }
            for hit in 1..=hits {
                let label = format!("{scenario}/{point}:{hit}");
                let id = site.start_run(scenario);
                let mut doomed = site.worker("doomed", LEASE, Some(&format!("{point}:{hit}")));
                // Either the failpoint kills the node, or the run ends first (the point is not on its path).
                let deadline = Instant::now() + LIMIT;
                let died = loop {
                    if let Some(status) = doomed.exited() {
                        assert!(
                            killed(status),
                            "{label}: the worker exited with {status} instead of being killed"
                        );
                        break true;
                    }
                    if wait_terminal(store, &id, Duration::ZERO).await.is_some()
                        || Instant::now() > deadline
                    {
                        break false;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                if died {
                    deaths.insert(doomed.pid(), now_nanos());
                    reached.insert(label.clone());
                    let survivor = site.worker("survivor", LEASE, None);
                    let ended = wait_terminal(store, &id, LIMIT).await;
                    survivor.stop();
                    if ended.is_none() {
                        problems.push(format!("{label}: the run never ended after the restart"));
                        continue;
                    }
                } else {
                    doomed.stop();
                    missed.push(label.clone());
                }
                let got = outcome(store, &id).await;
                if got != reference[scenario] {
                    problems.push(format!(
                        "{label}: ended as {got:?}, expected {:?}",
                        reference[scenario]
                    ));
                }
                trials.push((label, id));
            }
        }
    }
    // Every execution, every run, checked against the ledger at the end.
    let lines = site.ledger();
    for (label, id) in &trials {
        for problem in check_ledger(&site.ledger, store, id, &lines, &deaths).await {
            problems.push(format!("{label}: {problem}"));
        }
    }
    // A crash while a run is being created leaves no run or a whole one.
    for (point, whole) in [
        ("store.create_run.before", false),
        ("store.create_run.after", true),
    ] {
        let before = store.runs(&[], 10_000).await.expect("runs").len();
        let out = site
            .command(&["run", "crash-sequential"])
            .env("CORDON_CRASH_AT", format!("{point}:1"))
            .output()
            .expect("cordon run");
        assert!(killed(out.status), "{point}: `cordon run` was not killed");
        let runs = store.runs(&[], 10_000).await.expect("runs");
        assert_eq!(runs.len(), before + usize::from(whole), "{point}");
        if whole {
            let id = runs[0].id.clone();
            let worker = site.worker("survivor", LEASE, None);
            wait_terminal(store, &id, LIMIT)
                .await
                .expect("the created run ends");
            worker.stop();
            assert_eq!(
                outcome(store, &id).await,
                reference["sequential"],
                "{point}"
            );
        }
        reached.insert(format!("cli/{point}:1"));
    }
    eprintln!(
        "{backend}: SIGKILL at {} distinct points in {:.1}s ({} planned points were not on their run's path: {missed:?})",
        reached.len(),
        started.elapsed().as_secs_f64(),
        missed.len()
    );
    assert!(
        problems.is_empty(),
        "{backend}: {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        reached.len() >= 50,
        "{backend}: only {} crash points reached",
        reached.len()
    );
}
