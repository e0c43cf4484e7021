//! The worker: an engine node's loop over every run that needs driving.

use std::future::Future;
use std::time::Duration;

use super::{Engine, EngineError, Progress};

impl Engine {
    /// Claims up to `limit` active runs that no other node holds and drives
    /// each as far as it can go now. Returns what became of each.
    pub async fn sweep(&self, limit: u64) -> Result<Vec<(String, Progress)>, EngineError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_runs(&self.node, now, self.lease, limit)
            .await?;
        let mut progress = Vec::with_capacity(claimed.len());
        for run in claimed {
            match self.drive(&run).await {
                Ok(p) => progress.push((run, p)),
                // Another node took the run between the claim and the drive: its turn.
                Err(EngineError::LeaseLost(_)) => {}
                Err(e) => {
                    tracing::warn!(run = %run, error = %e, "run could not be driven");
                    self.store.release_lease(&run, &self.node).await?;
                }
            }
        }
        Ok(progress)
    }

    /// Sweeps every `every` until `stop` completes. Runs blocked on timers
    /// or gates are picked up again by later sweeps (timers are durable).
    pub async fn work(
        &self,
        stop: impl Future<Output = ()>,
        every: Duration,
    ) -> Result<(), EngineError> {
        tokio::pin!(stop);
        loop {
            self.sweep(64).await?;
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
