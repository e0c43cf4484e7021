//! The worker: an engine node's loop over every run that needs driving.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{Engine, EngineError, Progress};

impl Engine {
    /// Claims up to `limit` active runs that no other node holds and drives
    /// each as far as it can go now, one after the other. Returns what
    /// became of each. (Tests use it to step a node deterministically;
    /// [`Engine::work`] drives runs concurrently.)
    pub async fn sweep(&self, limit: u64) -> Result<Vec<(String, Progress)>, EngineError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_runs(&self.node, now, self.lease, limit)
            .await?;
        let mut progress = Vec::with_capacity(claimed.len());
        for run in claimed {
            if let Some(p) = self.drive_claimed(&run).await? {
                progress.push((run, p));
            }
        }
        Ok(progress)
    }

    /// Drives a run this node just claimed. `None` when another node took it
    /// meanwhile or it could not be driven (the lease is then given back so
    /// another node, or a later sweep, tries again).
    async fn drive_claimed(&self, run: &str) -> Result<Option<Progress>, EngineError> {
        match self.drive(run).await {
            Ok(p) => Ok(Some(p)),
            // Another node took the run between the claim and the drive: its turn.
            Err(EngineError::LeaseLost(_)) => Ok(None),
            Err(e) => {
                tracing::warn!(run = %run, error = %e, "run could not be driven");
                self.store.release_lease(run, &self.node).await?;
                Ok(None)
            }
        }
    }

    /// The node's main loop: every `options.every`, claims runs that can
    /// move (up to `options.capacity` driven at once) and drives each in its
    /// own task, until `stop` completes. Then it claims nothing more, gives
    /// the drives in hand `options.grace` to reach a stopping point, aborts
    /// the rest and hands their leases back, so another node (or this one,
    /// restarted) resumes them at once. Aborting a drive is safe for the
    /// same reason a crash is: every transition was committed before it was
    /// acted on, and an attempt cut short re-runs with its idempotency key.
    ///
    /// Storage errors while claiming are logged and retried on the next
    /// tick: a database that goes away stalls the node, it does not kill it.
    pub async fn work(
        &self,
        stop: impl Future<Output = ()>,
        options: WorkOptions,
    ) -> Result<(), EngineError> {
        let WorkOptions {
            every,
            capacity,
            grace,
        } = options;
        tokio::pin!(stop);
        let mut drives: JoinSet<()> = JoinSet::new();
        // Which run each drive task drives: to hand a run back when its
        // drive panics or is cut short.
        let mut driving: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => break,
                Some(done) = drives.join_next_with_id() => {
                    match done {
                        // The drive released the lease itself (or another task
                        // of this node drives the run and holds it).
                        Ok((id, ())) => {
                            driving.remove(&id);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "a run's driver panicked");
                            if let Some(run) = driving.remove(&e.id()) {
                                // Handed back, so another node (or a later tick) tries it.
                                let _ = self.store.release_lease(&run, &self.node).await;
                            }
                        }
                    }
                    // A finished drive may have freed capacity or unblocked another run.
                    continue;
                }
                _ = ticker.tick() => {}
                // A run started or a gate decided on this node: claim now.
                () = self.wake.notified() => {}
            }
            let room = capacity.saturating_sub(driving.len());
            if room == 0 {
                continue;
            }
            let now = self.clock.now();
            let claimed = match self
                .store
                .claim_runs(&self.node, now, self.lease, room as u64)
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming runs failed; retrying on the next tick");
                    continue;
                }
            };
            // Runs under this node's live lease are not claimed again, and a
            // run another task of this node drives is refused by `drive`.
            for run in claimed {
                let engine = self.clone();
                let driven = run.clone();
                let handle = drives.spawn(async move {
                    match engine.drive_claimed(&driven).await {
                        Ok(Some(progress)) => {
                            tracing::debug!(run = %driven, ?progress, "drive ended");
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(run = %driven, error = %e, "drive failed"),
                    }
                });
                driving.insert(handle.id(), run);
            }
        }
        tracing::info!(runs = driving.len(), "stopping");
        let finish = async {
            while let Some(done) = drives.join_next_with_id().await {
                let id = done.map_or_else(|e| e.id(), |(id, ())| id);
                driving.remove(&id);
            }
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            drives.abort_all();
            while drives.join_next().await.is_some() {}
            for run in driving.values() {
                self.store.release_lease(run, &self.node).await?;
            }
            tracing::info!(runs = driving.len(), "drives cut short; leases handed back");
        }
        Ok(())
    }
}

/// How a node works: [`Engine::work`]'s knobs.
#[derive(Debug, Clone, Copy)]
pub struct WorkOptions {
    /// How often to look for runs that can move.
    pub every: Duration,
    /// How many runs one node drives at once.
    pub capacity: usize,
    /// How long a stopping node lets its drives reach a stopping point.
    pub grace: Duration,
}

impl Default for WorkOptions {
    fn default() -> Self {
        WorkOptions {
            every: Duration::from_millis(250),
            capacity: 64,
            grace: Duration::from_secs(10),
        }
    }
}
