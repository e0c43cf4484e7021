//! Schema migrations. Append-only: a released migration never changes;
//! later issues add runs, steps, attempts, timers, leases, approvals and
//! audit events as new migrations.

mod m0001_playbook_versions;
mod m0002_runs;
mod m0003_run_concurrency;
mod m0004_plugin_state;
mod m0005_audit;
mod m0006_approvals;
mod m0007_api_tokens;
mod m0008_webhooks;

use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub(crate) struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_playbook_versions::Migration),
            Box::new(m0002_runs::Migration),
            Box::new(m0003_run_concurrency::Migration),
            Box::new(m0004_plugin_state::Migration),
            Box::new(m0005_audit::Migration),
            Box::new(m0006_approvals::Migration),
            Box::new(m0007_api_tokens::Migration),
            Box::new(m0008_webhooks::Migration),
        ]
    }
}
