//! Collects diagnostics and turns document paths into positions.

use crate::codes::Code;
use crate::diagnostic::Diagnostic;
use crate::yaml::{Node, PathSeg, Pos};

/// Builds a path into the document: `path!["steps", 3, "with"]`.
macro_rules! doc_path {
    ($($seg:expr),* $(,)?) => {
        [$($crate::yaml::PathSeg::from($seg)),*]
    };
}
pub(crate) use doc_path as path;

impl From<&str> for PathSeg {
    fn from(key: &str) -> Self {
        PathSeg::Key(key.to_string())
    }
}

impl From<&String> for PathSeg {
    fn from(key: &String) -> Self {
        PathSeg::Key(key.clone())
    }
}

impl From<usize> for PathSeg {
    fn from(index: usize) -> Self {
        PathSeg::Index(index)
    }
}

/// The diagnostics of one file.
pub(crate) struct Report<'a> {
    file: &'a str,
    root: Option<&'a Node>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(file: &'a str) -> Self {
        Report {
            file,
            root: None,
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn file(&self) -> &'a str {
        self.file
    }

    pub(crate) fn set_root(&mut self, root: &'a Node) {
        self.root = Some(root);
    }

    /// Records a diagnostic at `pos` and returns it for an optional better hint.
    pub(crate) fn at(
        &mut self,
        code: Code,
        pos: Pos,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diagnostics
            .push(Diagnostic::new(code, self.file, pos, message));
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    /// Records a diagnostic pointing at the value at `path`.
    pub(crate) fn at_value(
        &mut self,
        code: Code,
        path: &[PathSeg],
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let pos = self.value_pos(path);
        self.at(code, pos, message)
    }

    /// Records a diagnostic pointing at the key that ends `path`.
    pub(crate) fn at_key(
        &mut self,
        code: Code,
        path: &[PathSeg],
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let pos = self.key_pos(path);
        self.at(code, pos, message)
    }

    pub(crate) fn value_pos(&self, path: &[PathSeg]) -> Pos {
        self.root.map_or(Pos::START, |r| r.value_pos(path))
    }

    pub(crate) fn key_pos(&self, path: &[PathSeg]) -> Pos {
        self.root.map_or(Pos::START, |r| r.key_pos(path))
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

impl Diagnostic {
    /// Sets the hint in place (used right after [`Report::at`]).
    pub(crate) fn hint(&mut self, hint: impl Into<String>) {
        self.hint = hint.into();
    }
}

/// "did you mean `x`?" when a known name is close to `wrong`.
pub(crate) fn suggestion<'n>(
    wrong: &str,
    known: impl IntoIterator<Item = &'n str>,
) -> Option<&'n str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(wrong, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// A hint that suggests the closest known name, or lists the known names.
pub(crate) fn did_you_mean<'n>(
    wrong: &str,
    known: impl IntoIterator<Item = &'n str> + Clone,
    what: &str,
) -> String {
    match suggestion(wrong, known.clone()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => {
            let mut names: Vec<&str> = known.into_iter().collect();
            if names.is_empty() {
                return format!("no {what} is defined here");
            }
            names.sort_unstable();
            let shown: Vec<String> = names.iter().take(12).map(|n| format!("`{n}`")).collect();
            let more = if names.len() > 12 { ", …" } else { "" };
            format!("known {what}: {}{more}", shown.join(", "))
        }
    }
}

/// Describes a path in words for messages: "step `gate`" or "`triggers.schedules[0]`".
pub(crate) fn describe(root: Option<&Node>, path: &[PathSeg]) -> String {
    let render = |segs: &[PathSeg]| {
        let mut out = String::new();
        for seg in segs {
            match seg {
                PathSeg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    };
    if let [PathSeg::Key(steps), PathSeg::Index(i), rest @ ..] = path
        && steps == "steps"
    {
        let id = root
            .and_then(|r| r.lookup(&path[..2]))
            .and_then(|(_, n)| n.get("id"))
            .and_then(Node::as_str)
            .map_or_else(|| format!("step #{}", i + 1), |id| format!("step `{id}`"));
        return if rest.is_empty() {
            id
        } else {
            format!("`{}` of {id}", render(rest))
        };
    }
    if path.is_empty() {
        "the playbook".to_string()
    } else {
        format!("`{}`", render(path))
    }
}
