//! Three nodes on one PostgreSQL database; one is killed with SIGKILL while
//! it holds runs mid-step. Every run completes, the dead node's runs are
//! taken over within a bounded time, and no step ever executes on two
//! nodes at once.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use cordon_storage::testing::TestStore;

use crate::support::{Line, Site, check_ledger, wait_terminal};

const RUNS: usize = 8;
const LEASE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_runs_are_finished_by_the_others() {
    let db = TestStore::postgres().await.expect("postgres");
    let store = &db.store;
    let site = Site::new(&db.url);
    site.publish("slow");
    let ids: Vec<String> = (0..RUNS).map(|_| site.start_run("slow")).collect();
    let mut nodes: Vec<_> = ["n1", "n2", "n3"]
        .into_iter()
        // Three runs per node at most, so that every node gets some.
        .map(|name| site.worker_with(name, "1s", None, "3"))
        .collect();

    // Wait until n1 holds runs and is executing one of their steps.
    let deadline = Instant::now() + Duration::from_secs(20);
    let held = loop {
        let mut held = BTreeSet::new();
        for id in &ids {
            if let Some((node, _)) = store.lease_holder(id).await.expect("lease")
                && node == "n1"
            {
                held.insert(id.clone());
            }
        }
        let busy = site
            .ledger()
            .iter()
            .any(|l| l.pid == nodes[0].pid() && held.contains(&l.run));
        if !held.is_empty() && busy {
            break held;
        }
        assert!(Instant::now() < deadline, "n1 never took a run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let victim = nodes[0].pid();
    let died_at = nodes.remove(0).kill_hard();
    let deaths = HashMap::from([(victim, died_at)]);

    for id in &ids {
        let status = wait_terminal(store, id, Duration::from_secs(60)).await;
        assert_eq!(status.as_deref(), Some("succeeded"), "run {id}");
    }
    for node in nodes {
        node.stop();
    }

    let lines = site.ledger();
    let mut problems = Vec::new();
    for id in &ids {
        problems.extend(check_ledger(&site.ledger, store, id, &lines, &deaths).await);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Takeover: the first execution of a dead node's run by another node.
    let survivors: Vec<&Line> = lines
        .iter()
        .filter(|l| l.pid != victim && held.contains(&l.run) && l.t > died_at)
        .collect();
    let first = survivors
        .iter()
        .map(|l| l.t)
        .min()
        .expect("the dead node's runs went on");
    let takeover = Duration::from_nanos(u64::try_from(first - died_at).unwrap_or(u64::MAX));
    eprintln!(
        "n1 died holding {} of {RUNS} runs; another node executed their next step {:.0} ms later (lease {LEASE:?})",
        held.len(),
        takeover.as_secs_f64() * 1000.0
    );
    assert!(takeover < LEASE * 3, "takeover took {takeover:?}");
    let processes: BTreeSet<u32> = lines.iter().map(|l| l.pid).collect();
    assert!(
        processes.len() >= 2,
        "work was shared between nodes: {processes:?}"
    );
    drop(site);
    db.destroy().await.expect("cleanup");
}
