//! Playbooks: validate, publish, list, show and diff immutable versions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cordon_storage::PublishOutcome;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, permits};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiPath, ApiQuery, YamlBody};
use crate::publishing::{PublishError, publish, validate_source};
use crate::state::AppState;
use crate::views::{DiffView, PlaybookView, Published, VersionSummaryView, VersionView};

/// The playbook routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, publish_version))
        .routes(routes!(versions))
        .routes(routes!(show))
        .routes(routes!(diff))
        .routes(routes!(validate))
}

/// How diagnostics name the file.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct FileName {
    /// The file name diagnostics point into (default `playbook.yaml`).
    file: Option<String>,
}

impl FileName {
    fn get(&self) -> &str {
        self.file.as_deref().unwrap_or("playbook.yaml")
    }
}

fn diagnostics_json(diagnostics: &[cordon_playbook::Diagnostic]) -> Vec<Value> {
    diagnostics
        .iter()
        .filter_map(|d| serde_json::to_value(d).ok())
        .collect()
}

/// Every published playbook with its newest version.
#[utoipa::path(get, path = "/playbooks", tag = "playbooks",
    responses((status = 200, body = Vec<PlaybookView>)))]
async fn list(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
) -> Result<Json<Vec<PlaybookView>>, ApiError> {
    let playbooks = state.store.playbooks().await?;
    Ok(Json(
        playbooks
            .into_iter()
            .map(|p| PlaybookView {
                name: p.name,
                latest: p.latest,
                digest: p.digest,
                published_at: p.published_at,
                versions: p.versions,
            })
            .collect(),
    ))
}

/// Validates and publishes a playbook (YAML text). The same name, version
/// and content again changes nothing (200); other content under a
/// published version is refused (409).
#[utoipa::path(post, path = "/playbooks", tag = "playbooks", params(FileName),
    request_body(content = String, content_type = "application/yaml"),
    responses(
        (status = 201, description = "published", body = Published),
        (status = 200, description = "already published with this content", body = Published),
        (status = 409, description = "`version_conflict`", body = ErrorBody),
        (status = 422, description = "`invalid_playbook`: details holds every diagnostic", body = ErrorBody),
    ))]
async fn publish_version(
    who: Authorized<permits::Publish>,
    State(state): State<AppState>,
    ApiQuery(file): ApiQuery<FileName>,
    YamlBody(bytes): YamlBody,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let publication = match publish(
        &state.store,
        &state.catalog,
        file.get(),
        &bytes,
        &who.user,
        chrono::Utc::now(),
    )
    .await
    {
        Ok(publication) => publication,
        Err(PublishError::Invalid(diagnostics)) => {
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            return Err(ApiError::new(
                ErrorCode::InvalidPlaybook,
                format!("not published: the playbook has {errors} error(s)"),
            )
            .with_details(Value::from(diagnostics_json(&diagnostics))));
        }
        Err(PublishError::Storage(e)) => return Err(e.into()),
    };
    let (status, version) = match publication.outcome {
        PublishOutcome::Published(v) => (StatusCode::CREATED, v),
        PublishOutcome::AlreadyPublished(v) => (StatusCode::OK, v),
    };
    if status == StatusCode::CREATED {
        tracing::info!(playbook = %version.name, version = %version.version, by = %who.user, "published");
    }
    Ok((
        status,
        Json(Published {
            name: version.name,
            version: version.version,
            digest: version.digest,
            created: status == StatusCode::CREATED,
            diagnostics: diagnostics_json(&publication.diagnostics),
        }),
    ))
}

/// The published versions of a playbook, oldest first.
#[utoipa::path(get, path = "/playbooks/{name}/versions", tag = "playbooks",
    params(("name" = String, Path, description = "the playbook")),
    responses(
        (status = 200, body = Vec<VersionSummaryView>),
        (status = 404, description = "`unknown_playbook`", body = ErrorBody),
    ))]
async fn versions(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<VersionSummaryView>>, ApiError> {
    let versions = state.store.versions(&name).await?;
    if versions.is_empty() {
        return Err(unknown(&name));
    }
    Ok(Json(
        versions
            .into_iter()
            .map(|v| VersionSummaryView {
                version: v.version,
                digest: v.digest,
                published_at: v.published_at,
                published_by: v.published_by,
            })
            .collect(),
    ))
}

fn unknown(reference: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownPlaybook,
        format!("`{reference}` is not published"),
    )
}

/// One version exactly as published (`latest`: the highest version).
#[utoipa::path(get, path = "/playbooks/{name}/versions/{version}", tag = "playbooks",
    params(("name" = String, Path, description = "the playbook"),
           ("version" = String, Path, description = "a version, or `latest`")),
    responses(
        (status = 200, body = VersionView),
        (status = 404, description = "`unknown_playbook`", body = ErrorBody),
    ))]
async fn show(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<VersionView>, ApiError> {
    let found = if version == "latest" {
        state.store.latest(&name).await?
    } else {
        state.store.version(&name, &version).await?
    };
    let v = found.ok_or_else(|| unknown(&format!("{name}@{version}")))?;
    Ok(Json(VersionView {
        plugins: to_json(&v.plugins),
        inputs: to_json(&v.playbook.inputs),
        name: v.name,
        version: v.version,
        digest: v.digest,
        source: v.source,
        published_at: v.published_at,
        published_by: v.published_by,
    }))
}

/// A stored value as JSON (these serialise infallibly: maps of plain data).
fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Which two versions to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    /// The older version.
    from: String,
    /// The newer version.
    to: String,
}

/// What changed between two versions, step by step.
#[utoipa::path(get, path = "/playbooks/{name}/diff", tag = "playbooks",
    params(("name" = String, Path, description = "the playbook"), DiffQuery),
    responses(
        (status = 200, body = DiffView),
        (status = 404, description = "`unknown_playbook`", body = ErrorBody),
    ))]
async fn diff(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<Json<DiffView>, ApiError> {
    let (Some(a), Some(b)) = (
        state.store.version(&name, &q.from).await?,
        state.store.version(&name, &q.to).await?,
    ) else {
        return Err(unknown(&format!("{name}@{} or {name}@{}", q.from, q.to)));
    };
    let diff = cordon_playbook::diff::diff(&a.playbook, &b.playbook);
    Ok(Json(DiffView {
        from: diff.from.clone(),
        to: diff.to.clone(),
        same: diff.is_empty(),
        text: diff.to_string(),
    }))
}

/// Validates a playbook (YAML text) without publishing it: every
/// diagnostic, in the SPEC §3.2 JSON shape (an empty array: valid).
#[utoipa::path(post, path = "/validate", tag = "playbooks", params(FileName),
    request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, description = "`[{code, severity, message, file, line, col, hint}]`", body = Vec<Object>)))]
async fn validate(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiQuery(file): ApiQuery<FileName>,
    YamlBody(bytes): YamlBody,
) -> Result<Json<Vec<Value>>, ApiError> {
    let validation = validate_source(&state.store, &state.catalog, file.get(), &bytes).await?;
    Ok(Json(diagnostics_json(&validation.diagnostics)))
}
