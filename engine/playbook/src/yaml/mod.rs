//! A YAML reader that keeps the position of every key and value.
//!
//! serde_yaml reports a position only for syntax errors, so Cordon reads the
//! event stream of `saphyr-parser` itself and builds a small positioned tree.
//! Reading never panics and never stops at the first soft problem: duplicate
//! keys, unsupported tags and the like become [`ReadIssue`]s beside the tree.
//! Hard limits (size, nesting depth, alias expansion) keep a hostile file from
//! exhausting the stack or memory.

pub(crate) mod node;
mod reader;

pub use node::{Node, NodeKind, PathSeg, Pos};
pub use reader::{ReadIssue, ReadIssueKind, ReadLimits, ReadOutcome, read_document};
