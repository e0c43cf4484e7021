//! Checks the document against the JSON Schema and explains each violation
//! in the playbook's own terms, at the offending key or value.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::report::{Report, describe, did_you_mean};
use crate::codes::Code;
use crate::model::patterns;
use crate::schema::{playbook_schema, playbook_validator};
use crate::yaml::node::{pointer_segments, resolve_pointer};
use crate::yaml::{Node, PathSeg};

/// Reports every schema violation. Returns the paths that had one, so later
/// stages can stay quiet about parts that did not lower.
pub(crate) fn check(json: &Value, root: &Node, report: &mut Report<'_>) -> Vec<Vec<PathSeg>> {
    let mut paths = Vec::new();
    for error in playbook_validator().iter_errors(json) {
        explain(&error, json, root, report, &mut paths);
    }
    paths
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn type_name(kind: &TypeKind) -> String {
    let one = |t: &jsonschema::JsonType| match t.to_string().as_str() {
        "object" => "a mapping".to_string(),
        "array" => "a list".to_string(),
        "integer" => "an integer".to_string(),
        other => format!("a {other}"),
    };
    match kind {
        TypeKind::Single(t) => one(t),
        TypeKind::Multiple(set) => set.iter().map(|t| one(&t)).collect::<Vec<_>>().join(" or "),
    }
}

fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// The description of the schema node an error's keyword sits in.
fn schema_description(error: &ValidationError<'_>) -> Option<String> {
    let keyword_path = error.schema_path().as_str();
    let parent = keyword_path.rsplit_once('/').map_or("", |(p, _)| p);
    let schema = playbook_schema();
    let node = schema.pointer(parent)?;
    let node = match node.get("$ref").and_then(Value::as_str) {
        Some(r) => schema.pointer(r.trim_start_matches('#'))?,
        None => node,
    };
    node.get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn explain(
    error: &ValidationError<'_>,
    json: &Value,
    root: &Node,
    report: &mut Report<'_>,
    paths: &mut Vec<Vec<PathSeg>>,
) {
    let segments = pointer_segments(error.instance_path().as_str());
    let path = resolve_pointer(root, &segments);
    let instance = json
        .pointer(error.instance_path().as_str())
        .unwrap_or(&Value::Null);
    let place = describe(Some(root), &path);
    paths.push(path.clone());
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_fields(error);
            for name in unexpected {
                let mut field = path.clone();
                field.push(PathSeg::Key(name.clone()));
                let hint = if name == "<<" {
                    "YAML merge keys (`<<`) are not supported: repeat the fields, or anchor and alias a whole value".to_string()
                } else {
                    did_you_mean(name, allowed.iter().map(String::as_str), "fields")
                };
                report
                    .at_key(
                        Code::UnknownField,
                        &field,
                        format!("unknown field `{name}` in {place}"),
                    )
                    .hint(hint);
                paths.push(field);
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            report
                .at_value(
                    Code::MissingField,
                    &path,
                    format!("{place} is missing the required field `{name}`"),
                )
                .hint(format!("add `{name}:`"));
        }
        ValidationErrorKind::Type { kind } => {
            let wants_text = matches!(kind, TypeKind::Single(t) if t.to_string() == "string");
            let described =
                schema_description(error).unwrap_or_else(|| Code::WrongType.hint().to_string());
            let hint = if wants_text && (instance.is_number() || instance.is_boolean()) {
                // `version: 1.0` or `timeout: 300`: YAML read a number or a boolean.
                format!(
                    "{} (YAML reads `{instance}` as {}: text needs quotes)",
                    described.trim_end_matches('.'),
                    json_type(instance)
                )
            } else {
                described
            };
            report
                .at_value(
                    Code::WrongType,
                    &path,
                    format!(
                        "{place} must be {}, found {}",
                        type_name(kind),
                        json_type(instance)
                    ),
                )
                .hint(hint);
        }
        ValidationErrorKind::Enum { options } => {
            let choices = options
                .as_array()
                .map(|o| {
                    o.iter()
                        .map(|v| format!("`{}`", short(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let message = if path == [PathSeg::Key("cordon".into())] {
                format!(
                    "unsupported playbook format `{}`; this Cordon reads `cordon: v1`",
                    short(instance)
                )
            } else {
                format!("`{}` is not allowed for {place}", short(instance))
            };
            report
                .at_value(Code::InvalidChoice, &path, message)
                .hint(format!("use one of {choices}"));
        }
        ValidationErrorKind::Constant { expected_value } => {
            report
                .at_value(
                    Code::InvalidChoice,
                    &path,
                    format!("`{}` is not allowed for {place}", short(instance)),
                )
                .hint(format!("use `{}`", short(expected_value)));
        }
        ValidationErrorKind::Pattern { pattern } => {
            let what = patterns::describe(pattern)
                .map_or_else(|| format!("a value matching `{pattern}`"), str::to_string);
            report
                .at_value(
                    Code::InvalidFormat,
                    &path,
                    format!("`{}` is not {what} ({place})", short(instance)),
                )
                .hint(format!("write {what}"));
        }
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit } => {
            report.at_value(
                Code::OutOfRange,
                &path,
                format!("{place} is {}, below the minimum {limit}", short(instance)),
            );
        }
        ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => {
            report.at_value(
                Code::OutOfRange,
                &path,
                format!("{place} is {}, above the maximum {limit}", short(instance)),
            );
        }
        ValidationErrorKind::MinItems { limit } => {
            report.at_value(
                Code::OutOfRange,
                &path,
                format!("{place} needs at least {limit} item(s)"),
            );
        }
        ValidationErrorKind::MaxItems { limit } => {
            report.at_value(
                Code::OutOfRange,
                &path,
                format!("{place} takes at most {limit} item(s)"),
            );
        }
        ValidationErrorKind::MinLength { limit } => {
            report.at_value(
                Code::OutOfRange,
                &path,
                format!("{place} must be at least {limit} character(s) long"),
            );
        }
        ValidationErrorKind::MaxLength { limit } => {
            report.at_value(
                Code::OutOfRange,
                &path,
                format!("{place} must be at most {limit} character(s) long"),
            );
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            explain_alternatives(
                error, context, json, root, report, paths, &path, instance, &place,
            );
        }
        _ => {
            report.at_value(Code::NoMatchingForm, &path, format!("{place}: {error}"));
        }
    }
}

/// Explains a value that matched none of several forms. Branches that only
/// say "not null" are dropped (they come from optional fields); if one form
/// is left, its own errors are explained; if every form is a constant, the
/// value is a choice (S104); if every form failed on type alone, it is a
/// type error (S103); otherwise S107 with the field's description.
#[allow(clippy::too_many_arguments)]
fn explain_alternatives(
    error: &ValidationError<'_>,
    context: &[Vec<ValidationError<'static>>],
    json: &Value,
    root: &Node,
    report: &mut Report<'_>,
    paths: &mut Vec<Vec<PathSeg>>,
    path: &[PathSeg],
    instance: &Value,
    place: &str,
) {
    fn single<'b>(
        branch: &'b [ValidationError<'static>],
        at: &str,
    ) -> Option<&'b ValidationError<'static>> {
        match branch {
            [one] if one.instance_path().as_str() == at => Some(one),
            _ => None,
        }
    }
    let at = error.instance_path().as_str();
    let branches: Vec<&Vec<ValidationError<'static>>> = context
        .iter()
        .filter(|b| !single(b, at).is_some_and(|e| matches!(e.kind(), ValidationErrorKind::Type { kind: TypeKind::Single(t) } if t.to_string() == "null")))
        .collect();
    let type_only = |b: &&&Vec<ValidationError<'static>>| {
        single(b, at).is_some_and(|e| matches!(e.kind(), ValidationErrorKind::Type { .. }))
    };
    // A form the value has the right type for is the one the author meant.
    let right_type: Vec<&Vec<ValidationError<'static>>> =
        branches.iter().filter(|b| !type_only(b)).copied().collect();
    let branches = if right_type.is_empty() {
        branches
    } else {
        right_type
    };
    if let [only] = branches.as_slice() {
        for inner in only.iter() {
            explain(inner, json, root, report, paths);
        }
        return;
    }
    let constants: Option<Vec<String>> = branches
        .iter()
        .map(|b| match single(b, at).map(ValidationError::kind) {
            Some(ValidationErrorKind::Constant { expected_value }) => {
                Some(vec![format!("`{}`", short(expected_value))])
            }
            Some(ValidationErrorKind::Enum { options }) => options
                .as_array()
                .map(|o| o.iter().map(|v| format!("`{}`", short(v))).collect()),
            _ => None,
        })
        .collect::<Option<Vec<Vec<String>>>>()
        .map(|lists| lists.concat());
    if let Some(choices) = constants.filter(|c| !c.is_empty()) {
        report
            .at_value(
                Code::InvalidChoice,
                path,
                format!("`{}` is not allowed for {place}", short(instance)),
            )
            .hint(format!("use one of {}", choices.join(", ")));
        return;
    }
    let types: Option<Vec<String>> = branches
        .iter()
        .map(|b| match single(b, at).map(ValidationError::kind) {
            Some(ValidationErrorKind::Type { kind }) => Some(type_name(kind)),
            _ => None,
        })
        .collect();
    if let Some(types) = types.filter(|t| !t.is_empty()) {
        report
            .at_value(
                Code::WrongType,
                path,
                format!(
                    "{place} must be {}, found {}",
                    types.join(" or "),
                    json_type(instance)
                ),
            )
            .hint(schema_description(error).unwrap_or_else(|| Code::WrongType.hint().to_string()));
        return;
    }
    let forms = schema_description(error).unwrap_or_else(|| "one of the accepted forms".into());
    report
        .at_value(
            Code::NoMatchingForm,
            path,
            format!("`{}` is not a valid value for {place}", short(instance)),
        )
        .hint(forms);
}

/// The fields the schema allows where an unknown field was found.
fn allowed_fields(error: &ValidationError<'_>) -> Vec<String> {
    let keyword_path = error.schema_path().as_str();
    let parent = keyword_path
        .strip_suffix("/additionalProperties")
        .unwrap_or(keyword_path);
    let schema = playbook_schema();
    schema
        .pointer(parent)
        .and_then(|n| n.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}
