//! The process-wide wasmtime engine: Cranelift, the pooling allocator, epoch
//! interruption driven by a ticker thread, and the linkers built from grants.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings;
use crate::cache::CompiledCache;
use crate::capability::{Effective, Interface};
use crate::config::SandboxConfig;
use crate::host::HostState;

/// One per process: compiles, links and runs plugins.
#[derive(Debug)]
pub struct Sandbox {
    pub(crate) engine: Engine,
    pub(crate) config: SandboxConfig,
    pub(crate) cache: CompiledCache,
    _ticker: Ticker,
}

/// Advances the engine's epoch every tick, so that a guest that never calls
/// the host still reaches a deadline check.
#[derive(Debug)]
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The engine could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the plugin sandbox: {0}")]
pub struct SetupError(String);

impl Sandbox {
    /// Sets up the engine. Fails if the configuration is impossible (a pool
    /// that does not fit the address space, an unwritable cache directory).
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SetupError> {
        let limits = &config.limits;
        let memory = usize::try_from(limits.memory_bytes).map_err(|e| SetupError(e.to_string()))?;
        let instances = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        // A Rust wasip2 component has one memory and a few small core
        // instances and tables (the main module plus wit-component's shims).
        pool.total_component_instances(instances)
            .total_core_instances(instances * 16)
            .total_memories(instances * 2)
            .total_tables(instances * 16)
            .total_stacks(instances)
            .max_memory_size(memory)
            .max_memories_per_component(2)
            .max_tables_per_component(16)
            .max_core_instances_per_component(16);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(limits.fuel.is_some())
            .max_wasm_stack(512 << 10)
            // Reserve exactly the limit: a small address-space footprint per
            // slot, bounds checks instead of a 4 GiB reservation.
            .memory_reservation(limits.memory_bytes)
            .memory_guard_size(64 << 10)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| SetupError(format!("{e:#}")))?;
        let cache = CompiledCache::new(config.cache_dir.clone(), &engine).map_err(SetupError)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (engine, stop, tick) = (engine.clone(), stop.clone(), config.epoch_tick);
            std::thread::Builder::new()
                .name("cordon-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| SetupError(e.to_string()))?
        };
        Ok(Sandbox {
            engine,
            config,
            cache,
            _ticker: Ticker {
                stop,
                thread: Some(thread),
            },
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The linker for a plugin with these effective grants: WASI (with an
    /// empty context), `types`, `log`, `intent`, and one interface per
    /// granted capability kind — nothing else.
    pub(crate) fn linker(&self, grants: &Effective) -> wasmtime::Result<Linker<HostState>> {
        let mut linker = self.base_linker()?;
        for interface in grants.interfaces() {
            let l = &mut linker;
            match interface {
                Interface::Mqtt => {
                    bindings::mqtt::add_to_linker::<_, HasSelf<HostState>>(l, |s| s)?
                }
                Interface::Http => {
                    bindings::http::add_to_linker::<_, HasSelf<HostState>>(l, |s| s)?
                }
                Interface::Inventory => {
                    bindings::inventory::add_to_linker::<_, HasSelf<HostState>>(l, |s| s)?
                }
                Interface::Scratch => {
                    bindings::scratch::add_to_linker::<_, HasSelf<HostState>>(l, |s| s)?
                }
            }
        }
        Ok(linker)
    }

    /// The linker `describe` runs with: every `cordon:plugin` function traps.
    pub(crate) fn describe_linker(
        &self,
        component: &Component,
    ) -> wasmtime::Result<Linker<HostState>> {
        let mut linker = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
        self.trap_cordon_imports(&mut linker, component)?;
        Ok(linker)
    }

    /// Defines every function of every `cordon:plugin` interface the
    /// component imports as one that traps.
    ///
    /// Not `Linker::define_unknown_imports_as_traps`: it looks names up
    /// exactly, so a WASI import of another patch version (`@0.2.6` against
    /// the host's `@0.2.12`) counts as unknown and is replaced by traps too.
    /// Then a `describe` that merely builds a `HashMap` (std seeds its hasher
    /// through `wasi:random/insecure-seed`) trapped, although WASI is linked.
    fn trap_cordon_imports(
        &self,
        linker: &mut Linker<HostState>,
        component: &Component,
    ) -> wasmtime::Result<()> {
        use wasmtime::component::types::ComponentItem;
        let ty = component.component_type();
        for (name, item) in ty.imports(&self.engine) {
            if !name.starts_with("cordon:plugin/") || name.starts_with("cordon:plugin/types@") {
                continue;
            }
            let ComponentItem::ComponentInstance(instance) = item.ty else {
                continue;
            };
            let mut stubs = linker.instance(name)?;
            for (function, export) in instance.exports(&self.engine) {
                if let ComponentItem::ComponentFunc(_) = export.ty {
                    let called = format!("{name}#{function}");
                    stubs.func_new(function, move |_, _, _, _| {
                        wasmtime::bail!(
                            "`{called}` called from `describe`, which must call no import"
                        )
                    })?;
                }
            }
        }
        Ok(())
    }

    fn base_linker(&self) -> wasmtime::Result<Linker<HostState>> {
        let mut linker = Linker::new(&self.engine);
        // The WASI context is empty (see `invoke`); filesystem and socket
        // imports are refused before linking by the import check.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
        bindings::log::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
        bindings::intent::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
        Ok(linker)
    }
}
