//! One call of a plugin: a fresh `Store` with its limits, the call under a
//! wall-clock timeout, and every way it can end turned into a typed error.

use std::time::{Duration, Instant};

use cordon_runtime::attempt_state::{AttemptError, ErrorKind};
use serde_json::Value;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::bindings::{Call, PluginError};
use crate::host::{AttemptContext, AttemptRecord, HostState, Services, sanitise};
use crate::limits::{AttemptLimiter, MemoryLimit, TableLimit};
use crate::load::LoadedPlugin;
use crate::sandbox::Sandbox;

/// One call to make.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The run.
    pub run: String,
    /// The step key (with the fan-out item).
    pub step: String,
    /// The attempt, from 1.
    pub attempt: u32,
    /// `run/step/attempt`.
    pub key: String,
    /// Plan instead of act.
    pub dry_run: bool,
    /// The step's input (validated against the plugin's input schema here).
    pub input: Value,
    /// What the host interfaces reach.
    pub services: Services,
}

/// How a call ended, and what it left behind.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The output (for `compensate`, `Value::Null`), or the typed error.
    pub result: Result<Value, AttemptError>,
    /// Logs, intents, a denial, stderr.
    pub record: AttemptRecord,
    /// Wall-clock time of the whole call.
    pub elapsed: Duration,
}

fn error(kind: ErrorKind, message: impl Into<String>) -> AttemptError {
    AttemptError {
        kind,
        message: message.into(),
        retryable: false,
    }
}

/// What the guest returned, before output checks.
enum Returned {
    Output(String),
    Compensated,
}

impl Sandbox {
    /// A store for one call: empty WASI context (no preopens, no
    /// environment, no arguments, stdin closed, stdout discarded, stderr
    /// captured and bounded, no network), the memory limiter, fuel, and an
    /// epoch deadline that yields every tick and interrupts at the deadline.
    pub(crate) fn store(&self, context: AttemptContext) -> Store<HostState> {
        let stderr = MemoryOutputPipe::new(context.limits.stderr_bytes);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        let limits = context.limits.clone();
        let deadline = context.deadline;
        let state = HostState {
            wasi,
            table: wasmtime::component::ResourceTable::new(),
            limiter: AttemptLimiter::new(limits.memory_bytes),
            stderr,
            context,
            record: AttemptRecord::default(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if let Some(fuel) = limits.fuel {
            // Fuel is on for the whole engine when a budget is configured.
            let _ = store.set_fuel(fuel);
            let _ = store.fuel_async_yield_interval(Some(100_000));
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                // Yield to the executor each tick: a guest that never calls
                // the host cannot hold a tokio worker (and its timers).
                UpdateDeadline::Yield(1)
            })
        });
        store
    }

    /// Calls `execute`.
    pub async fn execute(&self, plugin: &LoadedPlugin, invocation: Invocation) -> Outcome {
        self.call(plugin, invocation, None).await
    }

    /// Calls `compensate` with the input and output of the successful execute.
    pub async fn compensate(
        &self,
        plugin: &LoadedPlugin,
        invocation: Invocation,
        output: Value,
    ) -> Outcome {
        self.call(plugin, invocation, Some(output)).await
    }

    async fn call(
        &self,
        plugin: &LoadedPlugin,
        invocation: Invocation,
        compensate: Option<Value>,
    ) -> Outcome {
        let started = Instant::now();
        let limits = &self.config.limits;
        let input = invocation.input.to_string();
        let mut record = AttemptRecord::default();
        let refuse = |e: AttemptError, record: AttemptRecord| Outcome {
            result: Err(e),
            record,
            elapsed: started.elapsed(),
        };
        if input.len() > limits.input_bytes {
            return refuse(
                AttemptError {
                    kind: ErrorKind::Plugin,
                    message: format!("input over {} bytes", limits.input_bytes),
                    retryable: false,
                },
                record,
            );
        }
        if let Some(problem) = plugin.input.iter_errors(&invocation.input).next() {
            return refuse(
                AttemptError {
                    kind: ErrorKind::Plugin,
                    message: format!(
                        "input does not match the plugin's schema at `{}`: {problem}",
                        problem.instance_path()
                    ),
                    retryable: false,
                },
                record,
            );
        }
        if compensate.is_some() && !plugin.descriptor.compensable {
            return refuse(
                error(ErrorKind::Plugin, "the plugin is not compensable"),
                record,
            );
        }
        let deadline = started + limits.timeout;
        let context = AttemptContext {
            plugin: plugin.manifest.name.clone(),
            run: invocation.run.clone(),
            dry_run: invocation.dry_run,
            deadline,
            grants: plugin.grants.clone(),
            services: invocation.services.clone(),
            limits: limits.clone(),
        };
        let mut store = self.store(context);
        let call = Call {
            run_id: invocation.run.clone(),
            step_id: invocation.step.clone(),
            attempt: invocation.attempt,
            idempotency_key: invocation.key.clone(),
            dry_run: invocation.dry_run,
        };
        let output_text = compensate.as_ref().map(Value::to_string);
        let work = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            let action = instance.cordon_plugin_action();
            match &output_text {
                None => action
                    .call_execute(&mut store, &call, &input)
                    .await
                    .map(|r| r.map(Returned::Output)),
                Some(output) => action
                    .call_compensate(&mut store, &call, &input, output)
                    .await
                    .map(|r| r.map(|()| Returned::Compensated)),
            }
        };
        // The epoch deadline stops guest code; this stops everything else
        // (a guest waiting in a host call), with a margin so that the epoch
        // normally wins and reports the same thing.
        let finished = tokio::time::timeout(limits.timeout + Duration::from_millis(50), work).await;
        let state = store.data_mut();
        record = std::mem::take(&mut state.record);
        record.stderr = sanitise(
            &String::from_utf8_lossy(&state.stderr.contents()),
            limits.stderr_bytes,
        );
        let result = match finished {
            Err(_) => Err(error(
                ErrorKind::Timeout,
                format!("no answer within {:?}", limits.timeout),
            )),
            Ok(Err(trap)) => Err(classify(&trap, &record, limits.timeout)),
            Ok(Ok(Err(PluginError { message, retryable }))) => Err(AttemptError {
                kind: ErrorKind::Plugin,
                message: sanitise(&message, 4096),
                retryable,
            }),
            Ok(Ok(Ok(Returned::Compensated))) => Ok(Value::Null),
            Ok(Ok(Ok(Returned::Output(text)))) => check_output(plugin, &text, limits.output_bytes),
        };
        // A denial is sticky: whatever the plugin made of it, the attempt is denied.
        let result = match &record.denied {
            Some(why) => Err(error(ErrorKind::Denied, why.clone())),
            None => result,
        };
        drop(store);
        Outcome {
            result,
            record,
            elapsed: started.elapsed(),
        }
    }
}

/// The output, if it is JSON within the size limit and matches the schema.
fn check_output(plugin: &LoadedPlugin, text: &str, max: usize) -> Result<Value, AttemptError> {
    if text.len() > max {
        return Err(error(
            ErrorKind::InvalidOutput,
            format!("output is {} bytes, over the limit of {max}", text.len()),
        ));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| error(ErrorKind::InvalidOutput, format!("output is not JSON: {e}")))?;
    if let Some(problem) = plugin.output.iter_errors(&value).next() {
        return Err(error(
            ErrorKind::InvalidOutput,
            format!(
                "output does not match the declared schema at `{}`: {problem}",
                problem.instance_path()
            ),
        ));
    }
    Ok(value)
}

/// Names what stopped the guest.
fn classify(trap: &wasmtime::Error, record: &AttemptRecord, timeout: Duration) -> AttemptError {
    if let Some(limit) = trap.downcast_ref::<MemoryLimit>() {
        return error(ErrorKind::OutOfMemory, limit.to_string());
    }
    if let Some(limit) = trap.downcast_ref::<TableLimit>() {
        return error(ErrorKind::OutOfMemory, limit.to_string());
    }
    let detail = if record.stderr.is_empty() {
        String::new()
    } else {
        format!(" (stderr: {})", record.stderr.trim())
    };
    match trap.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => error(
            ErrorKind::Timeout,
            format!("still running after {timeout:?}"),
        ),
        Some(Trap::OutOfFuel) => error(ErrorKind::OutOfFuel, "instruction budget used up"),
        Some(trap) => error(ErrorKind::Trap, format!("{trap}{detail}")),
        None => error(
            ErrorKind::Trap,
            format!("{}{detail}", sanitise(&format!("{trap:#}"), 2048)),
        ),
    }
}
