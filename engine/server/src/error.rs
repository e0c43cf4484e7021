//! Errors as the API answers them: `{code, message, details}` with a stable
//! code, and one table mapping each code to its HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cordon_runtime::{EngineError, StartError};
use cordon_storage::StorageError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal, $status:ident;)*) => {
        /// A stable error code. Codes are never renamed or reused; each has
        /// one HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as clients see it (`token_expired`).
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status answered with it.
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)* }
            }
        }
    };
}

error_codes! {
    /// No bearer token, or one that is not a token of this server.
    Unauthenticated = "unauthenticated", UNAUTHORIZED;
    /// The token is genuine but past its expiry: ask for a new one.
    TokenExpired = "token_expired", UNAUTHORIZED;
    /// The token is genuine but was revoked.
    TokenRevoked = "token_revoked", UNAUTHORIZED;
    /// The token's user is no longer in the server's directory.
    UnknownUser = "unknown_user", UNAUTHORIZED;
    /// The token's role does not allow this; the message names the role needed.
    Forbidden = "forbidden", FORBIDDEN;
    /// No such route.
    NotFound = "not_found", NOT_FOUND;
    /// The route exists, not with this method.
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED;
    /// The body is not JSON at all.
    MalformedJson = "malformed_json", BAD_REQUEST;
    /// The JSON does not fit the request's shape (`details.path` says where).
    InvalidBody = "invalid_body", UNPROCESSABLE_ENTITY;
    /// The body is larger than the server accepts.
    BodyTooLarge = "body_too_large", PAYLOAD_TOO_LARGE;
    /// The body's content type is not one this endpoint reads.
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE;
    /// A query parameter is missing or malformed.
    InvalidQuery = "invalid_query", BAD_REQUEST;
    /// A path parameter is malformed.
    InvalidPath = "invalid_path", BAD_REQUEST;
    /// The request is well formed but asks for something impossible (it says why).
    InvalidRequest = "invalid_request", UNPROCESSABLE_ENTITY;
    /// The playbook does not validate; `details` holds every diagnostic (SPEC §3.2).
    InvalidPlaybook = "invalid_playbook", UNPROCESSABLE_ENTITY;
    /// This name and version are published with other content: publish a new version.
    VersionConflict = "version_conflict", CONFLICT;
    /// No such playbook or version.
    UnknownPlaybook = "unknown_playbook", NOT_FOUND;
    /// No such run.
    UnknownRun = "unknown_run", NOT_FOUND;
    /// No such device.
    UnknownDevice = "unknown_device", NOT_FOUND;
    /// No such token.
    UnknownToken = "unknown_token", NOT_FOUND;
    /// The inputs do not match the playbook's declarations; `details` lists each problem.
    InvalidInputs = "invalid_inputs", UNPROCESSABLE_ENTITY;
    /// The playbook's concurrency limit is reached and it rejects new runs.
    AtCapacity = "at_capacity", CONFLICT;
    /// The run is not in a state where this makes sense (the message says why).
    Refused = "refused", CONFLICT;
    /// The inventory selector does not parse.
    InvalidSelector = "invalid_selector", BAD_REQUEST;
    /// The devices to import have problems; `details` lists each one.
    InvalidInventory = "invalid_inventory", UNPROCESSABLE_ENTITY;
    /// The change conflicts with what is stored; re-read.
    Conflict = "conflict", CONFLICT;
    /// No such approval request.
    UnknownApproval = "unknown_approval", NOT_FOUND;
    /// The approval request is closed (approved, rejected, expired, cancelled).
    ApprovalClosed = "approval_closed", CONFLICT;
    /// The plan behind the gate changed since it was shown; `details.plan_digest` is the current one.
    PlanChanged = "plan_changed", CONFLICT;
    /// The person is not among the gate's (current) approvers.
    NotAnApprover = "not_an_approver", FORBIDDEN;
    /// The person started the run; the gate does not let them approve it.
    SelfApproval = "self_approval", FORBIDDEN;
    /// The person already decided on this plan.
    AlreadyDecided = "already_decided", CONFLICT;
    /// The gate requires a comment with every decision.
    CommentRequired = "comment_required", UNPROCESSABLE_ENTITY;
    /// The structured input does not match what the gate asks for.
    InvalidApprovalInput = "invalid_approval_input", UNPROCESSABLE_ENTITY;
    /// The mailed link is spent or expired.
    LinkSpent = "link_spent", GONE;
    /// `POST /hooks/{source}` names no configured webhook source.
    UnknownWebhookSource = "unknown_webhook_source", NOT_FOUND;
    /// The webhook delivery is not authenticated as its source: no or wrong credentials, a forged, stale or replayed signature (`details.reason`). Nothing was started.
    WebhookUnauthorized = "webhook_unauthorized", UNAUTHORIZED;
    /// The webhook body is not a payload of the source's format (the message says where).
    InvalidWebhookPayload = "invalid_webhook_payload", BAD_REQUEST;
    /// The webhook source is over its rate limit; `Retry-After` says when to retry.
    WebhookRateLimited = "webhook_rate_limited", TOO_MANY_REQUESTS;
    /// The database is unreachable or migrations are pending.
    NotReady = "not_ready", SERVICE_UNAVAILABLE;
    /// The database failed in a way that may pass: retry.
    Unavailable = "unavailable", SERVICE_UNAVAILABLE;
    /// A bug or corrupt data; the server log has the cause.
    Internal = "internal", INTERNAL_SERVER_ERROR;
}

/// An error answer. Its body is [`ErrorBody`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
    /// Structured facts (diagnostics, the failing JSON path, the role needed).
    pub details: Option<Value>,
}

/// The JSON of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The stable code, such as `token_expired`.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// Structured facts, where there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// The same error with structured details.
    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// A failure whose cause belongs in the log, not in the answer.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "request failed");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the server log has the cause",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorBody {
            code: self.code.as_str().to_string(),
            message: self.message,
            details: self.details,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: say how to authenticate; a presented token that failed is `invalid_token`.
            let challenge = if matches!(
                self.code,
                ErrorCode::Unauthenticated | ErrorCode::WebhookUnauthorized
            ) {
                "Bearer realm=\"cordon\""
            } else {
                "Bearer realm=\"cordon\", error=\"invalid_token\""
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::VersionConflict { .. } => {
                ApiError::new(ErrorCode::VersionConflict, e.to_string())
            }
            StorageError::AtCapacity { .. } => ApiError::new(ErrorCode::AtCapacity, e.to_string()),
            StorageError::Conflict(_) | StorageError::StaleRevision { .. } => {
                ApiError::new(ErrorCode::Conflict, e.to_string())
            }
            e if e.is_transient() => {
                tracing::warn!(error = %e, "storage unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the database is unavailable; retry shortly",
                )
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownRun(id) => {
                ApiError::new(ErrorCode::UnknownRun, format!("no run `{id}`"))
            }
            EngineError::Refused(_)
            | EngineError::InvalidTransition(_)
            | EngineError::Unplannable(_)
            | EngineError::LeaseLost(_) => ApiError::new(ErrorCode::Refused, e.to_string()),
            EngineError::Storage(e) => e.into(),
            other => ApiError::internal(&other),
        }
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::UnknownPlaybook(_) => {
                ApiError::new(ErrorCode::UnknownPlaybook, e.to_string())
            }
            StartError::Inputs(problems) => {
                let details: Vec<String> = problems.iter().map(ToString::to_string).collect();
                ApiError::new(
                    ErrorCode::InvalidInputs,
                    "the inputs do not match the playbook's declarations; nothing was started",
                )
                .with_details(Value::from(details))
            }
            StartError::AtCapacity { .. } => ApiError::new(ErrorCode::AtCapacity, e.to_string()),
            StartError::ConcurrencyKey(_) => ApiError::new(ErrorCode::InvalidInputs, e.to_string()),
            StartError::Storage(e) => e.into(),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        ApiError::new(ErrorCode::InvalidPath, e.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::new(ErrorCode::InvalidQuery, e.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_are_unique_snake_case_and_4xx_or_5xx() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                code.as_str()
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }
}
