//! Builds a [`Node`] tree from saphyr-parser's event stream.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::node::{Node, NodeKind, Pos};

/// Limits that keep a hostile document from exhausting the reader.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most nodes the tree may hold, aliases expanded.
    pub max_nodes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_bytes: 1024 * 1024,
            max_depth: 64,
            max_nodes: 200_000,
        }
    }
}

/// Something the reader noticed, with where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadIssue {
    /// Where the problem is.
    pub pos: Pos,
    /// What the problem is.
    pub kind: ReadIssueKind,
}

/// The problems the reader reports. Fatal ones leave no tree behind.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadIssueKind {
    /// The text is not YAML (fatal).
    Syntax { message: String },
    /// The file holds no document (fatal).
    Empty,
    /// The file is larger than the limit (fatal).
    TooLarge { size: usize, limit: usize },
    /// Nesting goes deeper than the limit (fatal).
    TooDeep { limit: usize },
    /// Aliases expand to more nodes than the limit (fatal).
    TooManyNodes { limit: usize },
    /// A second document follows the first (the rest of the file is ignored).
    MultipleDocuments,
    /// A mapping repeats a key; the first occurrence wins.
    DuplicateKey { key: String, first: Pos },
    /// A tag outside the YAML core schema; the value is read as if untagged.
    UnsupportedTag { tag: String },
    /// A core-schema tag whose value does not parse as that type (read as a string).
    BadTaggedValue { tag: String },
    /// A mapping key that is a sequence or mapping (the entry is dropped).
    ComplexKey,
}

impl ReadIssueKind {
    /// Whether the reader had to give up on the document.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ReadIssueKind::Syntax { .. }
                | ReadIssueKind::Empty
                | ReadIssueKind::TooLarge { .. }
                | ReadIssueKind::TooDeep { .. }
                | ReadIssueKind::TooManyNodes { .. }
        )
    }
}

/// The tree (unless a fatal issue stopped the reader) and every issue found.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    /// The first document, when it could be read.
    pub root: Option<Node>,
    /// Every problem noticed, in reading order.
    pub issues: Vec<ReadIssue>,
}

/// A collection under construction.
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(String, Pos, Node)>,
        /// The key waiting for its value; `None` inside means "drop the value".
        pending: Option<Option<(String, Pos)>>,
    },
}

struct Builder {
    limits: ReadLimits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    root: Option<Node>,
    issues: Vec<ReadIssue>,
}

/// Reads the first YAML document of `source`.
pub fn read_document(source: &str, limits: ReadLimits) -> ReadOutcome {
    if source.len() > limits.max_bytes {
        return ReadOutcome {
            root: None,
            issues: vec![ReadIssue {
                pos: Pos::START,
                kind: ReadIssueKind::TooLarge {
                    size: source.len(),
                    limit: limits.max_bytes,
                },
            }],
        };
    }
    let mut builder = Builder {
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        issues: Vec::new(),
    };
    let mut documents = 0usize;
    for event in Parser::new_from_str(source) {
        let (event, span) = match event {
            Ok(ok) => ok,
            Err(err) => {
                // The scanner has its own nesting guard for flow collections,
                // which can trip before ours: report it as what it is.
                let kind = if err.info().contains("recursion limit") {
                    ReadIssueKind::TooDeep {
                        limit: limits.max_depth,
                    }
                } else {
                    ReadIssueKind::Syntax {
                        message: err.info().to_string(),
                    }
                };
                builder.fatal(Pos::from_marker(err.marker()), kind);
                break;
            }
        };
        let pos = Pos::from_marker(&span.start);
        let keep_going = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    builder.issue(pos, ReadIssueKind::MultipleDocuments);
                    false
                } else {
                    true
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                builder.scalar(value, style, anchor, tag, span)
            }
            Event::Alias(id) => builder.alias(id, pos),
            Event::SequenceStart(anchor, tag) => builder.open(pos, anchor, tag, true),
            Event::MappingStart(anchor, tag) => builder.open(pos, anchor, tag, false),
            Event::SequenceEnd | Event::MappingEnd => builder.close(),
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => true,
        };
        if !keep_going {
            break;
        }
    }
    let fatal = builder.issues.iter().any(|i| i.kind.is_fatal());
    if !fatal && builder.root.is_none() {
        builder.issue(Pos::START, ReadIssueKind::Empty);
    }
    let fatal = fatal || builder.root.is_none();
    ReadOutcome {
        root: if fatal { None } else { builder.root },
        issues: builder.issues,
    }
}

impl Builder {
    fn issue(&mut self, pos: Pos, kind: ReadIssueKind) {
        self.issues.push(ReadIssue { pos, kind });
    }

    fn fatal(&mut self, pos: Pos, kind: ReadIssueKind) {
        self.stack.clear();
        self.root = None;
        self.issue(pos, kind);
    }

    /// Counts `n` more nodes; false (after a fatal issue) when over budget.
    fn charge(&mut self, n: usize, pos: Pos) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            let limit = self.limits.max_nodes;
            self.fatal(pos, ReadIssueKind::TooManyNodes { limit });
            return false;
        }
        true
    }

    fn tag_name(tag: &Tag) -> String {
        if tag.is_yaml_core_schema() {
            format!("!!{}", tag.suffix)
        } else {
            format!("{}{}", tag.handle, tag.suffix)
        }
    }

    fn check_collection_tag(&mut self, tag: Option<&Cow<'_, Tag>>, pos: Pos, seq: bool) {
        if let Some(tag) = tag {
            let expected = if seq { "seq" } else { "map" };
            if !(tag.is_yaml_core_schema() && tag.suffix == expected) {
                let tag = Self::tag_name(tag);
                self.issue(pos, ReadIssueKind::UnsupportedTag { tag });
            }
        }
    }

    fn scalar(
        &mut self,
        value: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<Cow<'_, Tag>>,
        span: Span,
    ) -> bool {
        let pos = Pos::from_marker(&span.start);
        if !self.charge(1, pos) {
            return false;
        }
        let tag = match tag {
            Some(t) if !t.is_yaml_core_schema() => {
                let name = Self::tag_name(&t);
                self.issue(pos, ReadIssueKind::UnsupportedTag { tag: name });
                None
            }
            other => other,
        };
        let resolved = Scalar::parse_from_cow_and_metadata(value.clone(), style, tag.as_ref());
        let kind = match resolved {
            Some(Scalar::Null) => NodeKind::Null,
            Some(Scalar::Boolean(b)) => NodeKind::Bool(b),
            Some(Scalar::Integer(i)) => NodeKind::Int(i),
            Some(Scalar::FloatingPoint(f)) => NodeKind::Float(f.into_inner()),
            Some(Scalar::String(s)) => NodeKind::Str(s.into_owned()),
            None => {
                let name = tag.as_deref().map(Self::tag_name).unwrap_or_default();
                self.issue(pos, ReadIssueKind::BadTaggedValue { tag: name });
                NodeKind::Str(value.into_owned())
            }
        };
        let node = Node { pos, kind };
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), 1));
        }
        self.push(node, 1)
    }

    fn alias(&mut self, id: usize, pos: Pos) -> bool {
        // saphyr-parser rejects unknown anchors itself, so a miss here means
        // the anchor was dropped (a complex key); read it as null.
        let (node, size) = self.anchors.get(&id).cloned().unwrap_or((
            Node {
                pos,
                kind: NodeKind::Null,
            },
            1,
        ));
        if !self.charge(size, pos) {
            return false;
        }
        self.push(node, size)
    }

    fn open(&mut self, pos: Pos, anchor: usize, tag: Option<Cow<'_, Tag>>, seq: bool) -> bool {
        if self.stack.len() >= self.limits.max_depth {
            let limit = self.limits.max_depth;
            self.fatal(pos, ReadIssueKind::TooDeep { limit });
            return false;
        }
        if !self.charge(1, pos) {
            return false;
        }
        self.check_collection_tag(tag.as_ref(), pos, seq);
        self.stack.push(if seq {
            Frame::Seq {
                pos,
                anchor,
                items: Vec::new(),
            }
        } else {
            Frame::Map {
                pos,
                anchor,
                entries: Vec::new(),
                pending: None,
            }
        });
        true
    }

    fn close(&mut self) -> bool {
        let Some(frame) = self.stack.pop() else {
            return true;
        };
        let (node, anchor) = match frame {
            Frame::Seq { pos, anchor, items } => (
                Node {
                    pos,
                    kind: NodeKind::Seq(items),
                },
                anchor,
            ),
            Frame::Map {
                pos,
                anchor,
                entries,
                ..
            } => (
                Node {
                    pos,
                    kind: NodeKind::Map(entries),
                },
                anchor,
            ),
        };
        let size = count_nodes(&node);
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        self.push(node, size)
    }

    /// Places a finished node into its parent, or makes it the root.
    fn push(&mut self, node: Node, _size: usize) -> bool {
        let Some(top) = self.stack.last_mut() else {
            if self.root.is_none() {
                self.root = Some(node);
            }
            return true;
        };
        match top {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map {
                entries, pending, ..
            } => match pending.take() {
                None => {
                    let key = match &node.kind {
                        NodeKind::Str(s) => Some(s.clone()),
                        NodeKind::Int(i) => Some(i.to_string()),
                        NodeKind::Bool(b) => Some(b.to_string()),
                        NodeKind::Float(f) => Some(f.to_string()),
                        NodeKind::Null => Some("null".to_string()),
                        NodeKind::Seq(_) | NodeKind::Map(_) => None,
                    };
                    match key {
                        Some(key) => {
                            if let Some((_, first, _)) = entries.iter().find(|(k, _, _)| *k == key)
                            {
                                let first = *first;
                                *pending = Some(None);
                                self.issue(node.pos, ReadIssueKind::DuplicateKey { key, first });
                            } else {
                                *pending = Some(Some((key, node.pos)));
                            }
                        }
                        None => {
                            *pending = Some(None);
                            self.issue(node.pos, ReadIssueKind::ComplexKey);
                        }
                    }
                }
                Some(Some((key, key_pos))) => entries.push((key, key_pos, node)),
                Some(None) => {}
            },
        }
        true
    }
}

/// Counts the nodes of a subtree without recursion (the tree depth is bounded,
/// but an explicit stack keeps this cheap to reason about).
fn count_nodes(node: &Node) -> usize {
    let mut count = 0;
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        count += 1;
        match &n.kind {
            NodeKind::Seq(items) => todo.extend(items.iter()),
            NodeKind::Map(entries) => todo.extend(entries.iter().map(|(_, _, v)| v)),
            _ => {}
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(src: &str) -> ReadOutcome {
        read_document(src, ReadLimits::default())
    }

    #[test]
    fn keys_and_values_keep_their_positions() {
        let out = read("a: 1\nb:\n  - x\n  - {c: true}\n");
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let root = out.root.expect("root");
        let (key, value) = root.entry("b").expect("b");
        assert_eq!(key, Pos { line: 2, col: 1 });
        assert_eq!(value.pos, Pos { line: 3, col: 3 });
        let c = root
            .lookup(&[
                super::super::PathSeg::Key("b".into()),
                super::super::PathSeg::Index(1),
                super::super::PathSeg::Key("c".into()),
            ])
            .expect("c");
        assert_eq!(c.0, Some(Pos { line: 4, col: 6 }));
        assert_eq!(c.1.kind, NodeKind::Bool(true));
    }

    #[test]
    fn duplicate_keys_are_reported_and_the_first_wins() {
        let out = read("a: 1\na: 2\n");
        assert_eq!(out.issues.len(), 1);
        assert_eq!(out.issues[0].pos, Pos { line: 2, col: 1 });
        assert_eq!(
            out.root.expect("root").get("a").map(|n| n.kind.clone()),
            Some(NodeKind::Int(1))
        );
    }

    #[test]
    fn deep_nesting_stops_at_the_limit_without_recursion() {
        let src = "[".repeat(100_000);
        let out = read(&src);
        assert!(out.root.is_none());
        assert!(
            matches!(out.issues[0].kind, ReadIssueKind::TooDeep { limit: 64 }),
            "{:?}",
            out.issues
        );
    }

    #[test]
    fn deep_block_nesting_stops_at_the_limit() {
        let src: String = (0..100)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect();
        let out = read(&src);
        assert!(out.root.is_none());
        assert_eq!(out.issues[0].kind, ReadIssueKind::TooDeep { limit: 64 });
        // Sixty-four mappings fit; the sixty-fifth, on line 65, is refused.
        assert_eq!(out.issues[0].pos.line, 65);
    }

    #[test]
    fn alias_bombs_hit_the_node_budget() {
        let mut src = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in 'b'..='j' {
            src.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = name;
        }
        let out = read(&src);
        assert!(out.root.is_none());
        assert!(
            out.issues
                .iter()
                .any(|i| matches!(i.kind, ReadIssueKind::TooManyNodes { .. }))
        );
    }

    #[test]
    fn empty_and_comment_only_files_are_empty() {
        for src in ["", "# just a comment\n", "---\n"] {
            let out = read(src);
            assert!(
                out.root.is_none() || out.root.as_ref().map(|r| &r.kind) == Some(&NodeKind::Null),
                "{src:?}"
            );
        }
    }
}
