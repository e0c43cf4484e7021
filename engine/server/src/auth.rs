//! Who is asking, and may they: bearer-token authentication (a middleware
//! in front of every protected route) and authorisation by role (the
//! [`Authorized`] extractor each handler names its permission with, so a
//! handler's signature says who may call it, and the check runs before
//! its body is read).
//!
//! Tokens never reach a log: the `Authorization` header is marked
//! sensitive, request spans carry the user, never the header, and a token's
//! secret is compared only as a hash, in constant time (storage does it).

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use cordon_storage::{TokenCheck, TokenRecord};
use serde_json::json;

use crate::config::{ApiRole, Permission};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The person behind a request: the token's user and API role, and what
/// the directory says about them (groups and custom roles, which
/// approval gates check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name (`alice`).
    pub user: String,
    /// The token's API role.
    pub role: ApiRole,
    /// The user's groups, from the directory.
    pub groups: Vec<String>,
    /// The user's roles, from the directory (custom ones such as `security-lead`).
    pub roles: Vec<String>,
    /// The id of the token used (its public part).
    pub token: String,
}

impl Principal {
    /// How the audit log names them: `user:alice`.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user)
    }

    /// Whether their token's role allows `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }

    /// Whether the directory gives them `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the directory puts them in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// `Ok` when their role allows `permission`, else 403 naming the role needed.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.can(permission) {
            return Ok(());
        }
        let needed = permission.needed_role();
        let message = if needed == ApiRole::Admin {
            format!(
                "{} needs the `admin` role; this token's role is `{}`",
                permission.describe(),
                self.role
            )
        } else {
            format!(
                "{} needs the `{needed}` role (or `admin`); this token's role is `{}`",
                permission.describe(),
                self.role
            )
        };
        Err(ApiError::new(ErrorCode::Forbidden, message)
            .with_details(json!({"needed": needed, "role": self.role})))
    }
}

/// The bearer token of a request, if it carries exactly one.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "this API needs a bearer token: `Authorization: Bearer cordon_…` (see `cordon token create`)",
        ));
    };
    let text = value.to_str().unwrap_or_default();
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

impl AppState {
    /// Authenticates a request by its bearer token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let presented = bearer(headers)?;
        let record = match self
            .store
            .check_token(presented, chrono::Utc::now())
            .await?
        {
            TokenCheck::Valid(record) => record,
            TokenCheck::Invalid => {
                return Err(ApiError::new(
                    ErrorCode::Unauthenticated,
                    "the bearer token is not valid",
                ));
            }
            TokenCheck::Expired(record) => {
                return Err(ApiError::new(
                    ErrorCode::TokenExpired,
                    format!("token {} expired; ask for a new one", record.id),
                ));
            }
            TokenCheck::Revoked(record) => {
                return Err(ApiError::new(
                    ErrorCode::TokenRevoked,
                    format!("token {} was revoked", record.id),
                ));
            }
        };
        let (id, user) = (record.id.clone(), record.user.clone());
        self.principal_of(record)?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownUser,
                format!(
                    "token {id} belongs to `{user}`, who is not in this server's directory (`users:`)"
                ),
            )
        })
    }

    /// Who an active token speaks for, as the directory knows them now:
    /// `None` when its user left the directory. (The API's bearer check and
    /// the web session both end here.)
    pub fn principal_of(&self, record: TokenRecord) -> Result<Option<Principal>, ApiError> {
        let Some(entry) = self.directory.user(&record.user) else {
            return Ok(None);
        };
        let role: ApiRole = record.role.parse().map_err(|e: String| {
            ApiError::internal(&format!("token {} has a bad role: {e}", record.id))
        })?;
        Ok(Some(Principal {
            user: record.user,
            role,
            groups: entry.groups.clone(),
            roles: entry.roles.clone(),
            token: record.id,
        }))
    }
}

/// The middleware in front of every protected route: a request without a
/// valid token ends here (401); otherwise its [`Principal`] rides along in
/// the request's extensions and the request span records the user.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = state.authenticate(request.headers()).await?;
    tracing::Span::current().record("user", tracing::field::display(&principal.user));
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// A permission a handler requires, as a type.
pub trait Permit: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

/// The permits handlers name in [`Authorized`].
pub mod permits {
    use super::{Permission, Permit};

    macro_rules! permits {
        ($($(#[doc = $doc:literal])* $name:ident => $permission:ident;)*) => {$(
            $(#[doc = $doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;

            impl Permit for $name {
                const PERMISSION: Permission = Permission::$permission;
            }
        )*};
    }

    permits! {
        /// Any role may read.
        Read => Read;
        /// Responders (and admins) start and control runs, import inventory.
        Operate => Operate;
        /// Approvers (and admins) decide approvals.
        Decide => Decide;
        /// Admins publish playbooks.
        Publish => Publish;
        /// Admins manage tokens.
        ManageTokens => ManageTokens;
    }
}

/// The authenticated principal, allowed permit `P` — or the request is
/// refused (401 without a principal, 403 without the permission) before
/// the handler runs and before its body is read.
#[derive(Debug, Clone)]
pub struct Authorized<P> {
    /// Who asks.
    pub principal: Principal,
    permit: PhantomData<P>,
}

impl<P> std::ops::Deref for Authorized<P> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<S: Send + Sync, P: Permit> FromRequestParts<S> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Fail closed: a route that missed the middleware has no principal.
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| {
                ApiError::new(ErrorCode::Unauthenticated, "this API needs a bearer token")
            })?;
        principal.require(P::PERMISSION)?;
        Ok(Authorized {
            principal,
            permit: PhantomData,
        })
    }
}
