//! sea-orm entities, one module per table.

pub(crate) mod attempt;
pub(crate) mod device;
pub(crate) mod lease;
pub(crate) mod playbook_version;
pub(crate) mod run;
pub(crate) mod step_run;
pub(crate) mod timer;
