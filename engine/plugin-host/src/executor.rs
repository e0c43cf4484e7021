//! The engine's side: [`PluginExecutor`] performs `uses:` steps by calling
//! loaded plugins in the sandbox.

use std::sync::Arc;

use cordon_playbook::PluginDescriptor;
use cordon_runtime::attempt_state::{AttemptError, ErrorKind};
use cordon_runtime::executor::{Action, BoxFuture, Executor, StepCall};
use serde_json::Value;

use crate::host::Services;
use crate::invoke::{Invocation, Outcome};
use crate::load::LoadedPlugin;
use crate::sandbox::Sandbox;

/// Where what a call left behind (its intents, logs, a denial, stderr) is
/// recorded once it returns: the audit log.
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Records the outcome of `call` of plugin `plugin`.
    fn record(
        &self,
        plugin: &str,
        call: &StepCall,
        outcome: &Outcome,
    ) -> BoxFuture<Result<(), String>>;
}

/// Runs plugin steps in the sandbox; `notify` steps go to `notifier`, if any.
#[derive(Debug, Clone)]
pub struct PluginExecutor {
    sandbox: Arc<Sandbox>,
    plugins: Vec<Arc<LoadedPlugin>>,
    services: Services,
    notifier: Option<Arc<dyn Executor>>,
    audit: Option<Arc<dyn AuditSink>>,
}

impl PluginExecutor {
    /// An executor for these loaded plugins.
    pub fn new(
        sandbox: Arc<Sandbox>,
        plugins: Vec<Arc<LoadedPlugin>>,
        services: Services,
    ) -> PluginExecutor {
        PluginExecutor {
            sandbox,
            plugins,
            services,
            notifier: None,
            audit: None,
        }
    }

    /// Records every call's outcome in `sink`.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> PluginExecutor {
        self.audit = Some(sink);
        self
    }

    /// Sends `notify` steps to `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<dyn Executor>) -> PluginExecutor {
        self.notifier = Some(notifier);
        self
    }

    /// The descriptors of the loaded plugins: the validator's catalog.
    pub fn descriptors(&self) -> Vec<PluginDescriptor> {
        self.plugins.iter().map(|p| p.descriptor.clone()).collect()
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// The plugin for `uses: name@major`: the component with the pinned
    /// digest if the playbook version pinned one (and nothing else), or
    /// else the highest loaded version of that major.
    pub fn resolve(&self, uses: &str, pin: Option<&str>) -> Result<Arc<LoadedPlugin>, String> {
        let (name, major) = uses.split_once('@').unwrap_or((uses, ""));
        if let Some(pin) = pin {
            return self
                .plugins
                .iter()
                .find(|p| p.descriptor.name == name && p.digest() == pin)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "plugin `{uses}` with the pinned digest {pin} is not loaded on this node"
                    )
                });
        }
        self.plugins
            .iter()
            .filter(|p| {
                p.descriptor.name == name
                    && (major.is_empty() || major == p.descriptor.version.major.to_string())
            })
            .max_by(|a, b| a.descriptor.version.cmp(&b.descriptor.version))
            .cloned()
            .ok_or_else(|| format!("plugin `{uses}` is not loaded on this node"))
    }

    fn invocation(&self, call: &StepCall) -> Invocation {
        let attempt = call
            .key
            .as_str()
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Invocation {
            run: call.run.clone(),
            step: call.step.clone(),
            attempt,
            key: call.key.to_string(),
            dry_run: call.dry_run,
            input: call.inputs.clone(),
            services: self.services.clone(),
        }
    }
}

fn unavailable(message: String) -> AttemptError {
    AttemptError {
        kind: ErrorKind::Unavailable,
        message,
        retryable: false,
    }
}

/// The step's output; in a dry run, with the plan (the intents) under `_plan`.
fn finish(outcome: Outcome, dry_run: bool) -> Result<Value, AttemptError> {
    let mut output = outcome.result?;
    if dry_run && let Value::Object(map) = &mut output {
        let plan = serde_json::to_value(&outcome.record.intents).unwrap_or(Value::Null);
        map.insert("_plan".into(), plan);
    }
    Ok(output)
}

impl Executor for PluginExecutor {
    fn execute(&self, call: StepCall) -> BoxFuture<Result<Value, AttemptError>> {
        let uses = match &call.action {
            Action::Plugin(uses) => uses.clone(),
            Action::Notify => {
                return match &self.notifier {
                    Some(n) => n.execute(call),
                    None => Box::pin(async {
                        Err(unavailable("this node has no mailer configured".into()))
                    }),
                };
            }
        };
        let plugin = match self.resolve(&uses, call.pin.as_deref()) {
            Ok(plugin) => plugin,
            Err(message) => return Box::pin(async move { Err(unavailable(message)) }),
        };
        let sandbox = self.sandbox.clone();
        let invocation = self.invocation(&call);
        let audit = self.audit.clone();
        Box::pin(async move {
            let dry_run = invocation.dry_run;
            let outcome = sandbox.execute(&plugin, invocation).await;
            if let Some(audit) = audit
                && let Err(e) = audit.record(&plugin.manifest.name, &call, &outcome).await
            {
                // The effect has happened; its result is still committed
                // with the attempt (and the call was recorded before it ran).
                tracing::error!(run = %call.run, step = %call.step, "cannot record the plugin's outcome in the audit log: {e}");
            }
            finish(outcome, dry_run)
        })
    }

    fn compensate(&self, call: StepCall, outputs: Value) -> BoxFuture<Result<(), String>> {
        let uses = match &call.action {
            Action::Plugin(uses) => uses.clone(),
            Action::Notify => {
                return Box::pin(async { Err("notify cannot be compensated".to_string()) });
            }
        };
        let plugin = match self.resolve(&uses, call.pin.as_deref()) {
            Ok(plugin) => plugin,
            Err(message) => return Box::pin(async move { Err(message) }),
        };
        let sandbox = self.sandbox.clone();
        let invocation = self.invocation(&call);
        Box::pin(async move {
            // The output handed back is the plugin's own, without the plan.
            let mut outputs = outputs;
            if let Value::Object(map) = &mut outputs {
                map.remove("_plan");
            }
            sandbox
                .compensate(&plugin, invocation, outputs)
                .await
                .result
                .map(drop)
                .map_err(|e| format!("{:?}: {}", e.kind, e.message))
        })
    }
}
