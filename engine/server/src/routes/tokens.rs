//! API tokens, for admins: create (the secret is shown once), list, revoke.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cordon_storage::{NewToken, Revocation};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, permits};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::views::{CreateToken, CreatedToken, TokenView};

/// The token routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// Every token (never a secret), oldest first.
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>)))]
async fn list(
    _: Authorized<permits::ManageTokens>,
    State(state): State<AppState>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let now = chrono::Utc::now();
    let tokens = state.store.tokens().await?;
    Ok(Json(
        tokens.iter().map(|t| TokenView::new(t, now)).collect(),
    ))
}

/// Creates a token for a user of the directory. The answer is the only
/// place its secret ever appears. Audited (never with the secret).
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses(
        (status = 201, body = CreatedToken),
        (status = 422, description = "`invalid_request`: unknown user or bad expiry", body = ErrorBody),
    ))]
async fn create(
    who: Authorized<permits::ManageTokens>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    if state.directory.user(&request.user).is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "`{}` is not in this server's directory (`users:`)",
                request.user
            ),
        ));
    }
    let now = chrono::Utc::now();
    let expires_at = match &request.expires_in {
        None => None,
        Some(text) => {
            let duration: cordon_playbook::model::Duration =
                text.parse().map_err(|e: String| {
                    ApiError::new(ErrorCode::InvalidRequest, format!("expires_in: {e}"))
                })?;
            let duration = chrono::Duration::from_std(duration.get()).map_err(|e| {
                ApiError::new(ErrorCode::InvalidRequest, format!("expires_in: {e}"))
            })?;
            Some(now.checked_add_signed(duration).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidRequest, "expires_in is too far away")
            })?)
        }
    };
    let issued = state
        .store
        .create_token(
            NewToken {
                name: request.name.unwrap_or_else(|| request.user.clone()),
                user: request.user,
                role: request.role.as_str().to_string(),
                expires_at,
                created_by: who.user.clone(),
            },
            now,
        )
        .await?;
    tracing::info!(token = %issued.record.id, user = %issued.record.user, role = %issued.record.role, by = %who.user, "token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            record: TokenView::new(&issued.record, now),
            token: issued.token,
        }),
    ))
}

/// Revokes a token for good (again: no change).
#[utoipa::path(post, path = "/tokens/{id}/revoke", tag = "tokens",
    params(("id" = String, Path, description = "the token id")),
    responses(
        (status = 200, body = TokenView),
        (status = 404, description = "`unknown_token`", body = ErrorBody),
    ))]
async fn revoke(
    who: Authorized<permits::ManageTokens>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TokenView>, ApiError> {
    let now = chrono::Utc::now();
    let record = match state.store.revoke_token(&id, &who.user, now).await {
        Ok(Revocation::Revoked(r) | Revocation::AlreadyRevoked(r)) => r,
        Err(cordon_storage::StorageError::NotFound(_)) => {
            return Err(ApiError::new(
                ErrorCode::UnknownToken,
                format!("no token `{id}`"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(token = %record.id, by = %who.user, "token revoked");
    Ok(Json(TokenView::new(&record, now)))
}
