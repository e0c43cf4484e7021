//! sea-orm entities, one module per table.

pub(crate) mod playbook_version;
