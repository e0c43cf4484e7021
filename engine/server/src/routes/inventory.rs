//! The device inventory: list (by selector), show one, import.

use axum::Json;
use axum::extract::State;
use cordon_runtime::inventory::StoredInventory;
use cordon_storage::{DeviceRecord, NewEvent, device_problems};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest as _;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, permits};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::views::{DeviceView, ImportDevices, ImportedDevices};

/// The inventory routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, import))
        .routes(routes!(show))
}

/// Which devices to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// A selector as in `inventory.select(...)`: `tag=line-3,criticality>=high`.
    select: Option<String>,
}

/// Devices, by id; those a selector picks when one is given.
#[utoipa::path(get, path = "/inventory", tag = "inventory", params(ListQuery),
    responses(
        (status = 200, body = Vec<DeviceView>),
        (status = 400, description = "`invalid_selector`", body = ErrorBody),
    ))]
async fn list(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<DeviceView>>, ApiError> {
    let devices = state.store.devices().await?;
    let devices: Vec<DeviceRecord> = match &q.select {
        None => devices,
        Some(selector) => {
            let ids = StoredInventory::new(devices.clone())
                .ids(selector)
                .map_err(|e| {
                    ApiError::new(ErrorCode::InvalidSelector, format!("`{selector}`: {e}"))
                })?;
            devices
                .into_iter()
                .filter(|d| ids.contains(&d.id))
                .collect()
        }
    };
    Ok(Json(devices.iter().map(DeviceView::from).collect()))
}

/// One device.
#[utoipa::path(get, path = "/inventory/{id}", tag = "inventory",
    params(("id" = String, Path, description = "the device id")),
    responses(
        (status = 200, body = DeviceView),
        (status = 404, description = "`unknown_device`", body = ErrorBody),
    ))]
async fn show(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let device = state.store.device(&id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownDevice,
            format!("no device `{id}` in the inventory"),
        )
    })?;
    Ok(Json(DeviceView::from(&device)))
}

/// Adds devices or replaces those with the same id: every device is
/// checked first, and nothing is written unless all are valid. Audited.
#[utoipa::path(post, path = "/inventory", tag = "inventory", request_body = ImportDevices,
    responses(
        (status = 200, body = ImportedDevices),
        (status = 422, description = "`invalid_inventory`: details lists each problem", body = ErrorBody),
    ))]
async fn import(
    who: Authorized<permits::Operate>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ImportDevices>,
) -> Result<Json<ImportedDevices>, ApiError> {
    let devices: Vec<DeviceRecord> = request.devices.into_iter().map(Into::into).collect();
    if devices.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInventory,
            "no device to import",
        ));
    }
    let problems = device_problems(&devices);
    if !problems.is_empty() {
        let details: Vec<_> = problems
            .iter()
            .map(|p| json!({"path": format!("devices[{}]", p.index), "code": p.code, "message": p.message}))
            .collect();
        return Err(ApiError::new(
            ErrorCode::InvalidInventory,
            format!("nothing imported: {} problem(s)", problems.len()),
        )
        .with_details(json!(details)));
    }
    let digest = sha2::Sha256::digest(
        serde_json::to_vec(&devices.iter().map(DeviceView::from).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let event = NewEvent {
        actor: who.actor(),
        kind: "inventory.imported".into(),
        run: None,
        step: None,
        device: None,
        data: json!({
            "via": "api",
            "digest": format!("sha256:{}", hex::encode(digest)),
            "devices": devices.iter().map(|d| &d.id).collect::<Vec<_>>(),
        }),
    };
    let imported = state
        .store
        .import_devices(&devices, event, chrono::Utc::now())
        .await?;
    Ok(Json(ImportedDevices {
        imported: devices.len(),
        new: imported.new,
        updated: imported.updated,
    }))
}
