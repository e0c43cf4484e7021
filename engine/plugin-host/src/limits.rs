//! The per-store resource limiter, and the typed errors a limit raises so
//! that a trap can be told apart from a limit being hit.

/// Refuses memory growth past the limit by trapping with [`MemoryLimit`]
/// (instead of letting `memory.grow` return -1: Rust's allocator would then
/// abort, and the abort would look like any other trap).
#[derive(Debug)]
pub(crate) struct AttemptLimiter {
    memory_bytes: usize,
}

impl AttemptLimiter {
    pub(crate) fn new(memory_bytes: u64) -> AttemptLimiter {
        AttemptLimiter {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
        }
    }
}

/// A plugin asked for more memory than its limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {desired})")]
pub(crate) struct MemoryLimit {
    pub(crate) limit: usize,
    pub(crate) desired: usize,
}

/// A plugin asked for more table elements, instances or memories than allowed.
#[derive(Debug, thiserror::Error)]
#[error("table limit exceeded (asked for {0} elements)")]
pub(crate) struct TableLimit(pub(crate) usize);

/// Table elements per table: enough for any reasonable Rust component.
const TABLE_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for AttemptLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(MemoryLimit {
                limit: self.memory_bytes,
                desired,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(TableLimit(desired)));
        }
        Ok(true)
    }

    // A Rust component has a handful of core instances, tables and memories.
    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        8
    }
}
