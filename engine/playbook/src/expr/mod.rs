//! Expressions: `${{ … }}` templates, CEL conditions and inventory selectors.
//!
//! Parsing uses the `cel` crate's parser; this module only walks the tree to
//! find which names an expression reads, so the validator can report a
//! reference to an undeclared input or a step that is not upstream before
//! anything runs.

mod references;
mod selector;
mod template;

pub use references::{Finding, Scope, StepFacts, check};
pub use selector::{Criticality, Selector, SelectorError, SelectorField, SelectorOp, SelectorTerm};
pub use template::{Segment, TemplateError, condition_source, segments, whole_expression};
