//! The positioned YAML tree.

use serde_json::{Map, Number, Value};

/// A 1-based line and column in the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub col: u32,
}

impl Pos {
    /// The first character of the file.
    pub const START: Pos = Pos { line: 1, col: 1 };

    /// Builds a position from saphyr's marker (1-based line, 0-based column).
    pub(crate) fn from_marker(marker: &saphyr_parser::Marker) -> Pos {
        Pos {
            line: u32::try_from(marker.line()).unwrap_or(u32::MAX).max(1),
            col: u32::try_from(marker.col())
                .unwrap_or(u32::MAX - 1)
                .saturating_add(1),
        }
    }
}

/// One segment of a path into the document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts (for a block mapping: its first key).
    pub pos: Pos,
    /// What the node holds.
    pub kind: NodeKind,
}

/// The content of a [`Node`], already resolved per the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A floating-point number (may be NaN or infinite, which JSON cannot hold).
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with string keys, in document order; each key keeps its position.
    Map(Vec<(String, Pos, Node)>),
}

impl Node {
    /// The value of `key` if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, node)| node)
    }

    /// The position of `key` and its value, if this is a mapping that has it.
    pub fn entry(&self, key: &str) -> Option<(Pos, &Node)> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, pos, node)| (*pos, node)),
            _ => None,
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Follows `path` from this node. Returns the node and, when the last
    /// segment is a key, the position of that key.
    pub fn lookup(&self, path: &[PathSeg]) -> Option<(Option<Pos>, &Node)> {
        let mut node = self;
        let mut key_pos = None;
        for seg in path {
            match (seg, &node.kind) {
                (PathSeg::Key(key), NodeKind::Map(_)) => {
                    let (pos, next) = node.entry(key)?;
                    key_pos = Some(pos);
                    node = next;
                }
                (PathSeg::Index(i), NodeKind::Seq(items)) => {
                    node = items.get(*i)?;
                    key_pos = None;
                }
                _ => return None,
            }
        }
        Some((key_pos, node))
    }

    /// The position that best describes `path`: the value itself if it
    /// exists, otherwise the deepest existing ancestor.
    pub fn value_pos(&self, path: &[PathSeg]) -> Pos {
        (0..=path.len())
            .rev()
            .find_map(|len| self.lookup(&path[..len]).map(|(_, node)| node.pos))
            .unwrap_or(self.pos)
    }

    /// The position of the key that ends `path`, falling back to
    /// [`Node::value_pos`] when the path ends in an index or does not exist.
    pub fn key_pos(&self, path: &[PathSeg]) -> Pos {
        match self.lookup(path) {
            Some((Some(key), _)) => key,
            _ => self.value_pos(path),
        }
    }

    /// Converts the tree to JSON. NaN and infinities, which JSON cannot hold,
    /// become their YAML spelling as strings so the schema reports a type error.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::Number((*i).into()),
            NodeKind::Float(f) => {
                Number::from_f64(*f).map_or_else(|| Value::String(f.to_string()), Value::Number)
            }
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, _, v)| (k.clone(), v.to_json()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

/// Splits an RFC 6901 JSON pointer into path segments. Numeric segments are
/// indices only where the document holds a sequence, so the caller resolves
/// them against the tree with [`resolve_pointer`].
pub fn pointer_segments(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Resolves JSON-pointer segments against the tree, deciding for each one
/// whether it is a key or an index by looking at the node it applies to.
pub fn resolve_pointer(root: &Node, segments: &[String]) -> Vec<PathSeg> {
    let mut path = Vec::with_capacity(segments.len());
    let mut node = Some(root);
    for seg in segments {
        let step = match node.map(|n| &n.kind) {
            Some(NodeKind::Seq(_)) => seg.parse().map(PathSeg::Index).ok(),
            _ => None,
        }
        .unwrap_or_else(|| PathSeg::Key(seg.clone()));
        node = node.and_then(|n| n.lookup(std::slice::from_ref(&step)).map(|(_, n)| n));
        path.push(step);
    }
    path
}
