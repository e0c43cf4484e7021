//! `cordon inventory import|list|show`: the asset inventory playbooks act
//! on (`foreach` over `inventory.select(...)`, plugins' `inventory` reads).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, anyhow};
use cordon_runtime::inventory::StoredInventory;
use cordon_storage::{DeviceRecord, NewEvent, device_problems};
use serde::Deserialize;
use serde_json::json;

use crate::cli::InventoryCommand;
use crate::database::with_store;
use crate::{Output, exit};

pub fn run(command: &InventoryCommand, out: &mut Output) -> anyhow::Result<u8> {
    match command {
        InventoryCommand::Import { file, by, database } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let devices = match parse(file, &text) {
                Ok(devices) => devices,
                Err(problems) => {
                    for problem in &problems {
                        writeln!(out.stderr, "{problem}")?;
                    }
                    writeln!(
                        out.stderr,
                        "nothing imported: {} problem(s) in {}",
                        problems.len(),
                        file.display()
                    )?;
                    return Ok(exit::PROBLEMS);
                }
            };
            let actor = format!("user:{}", crate::node::actor(by.as_deref()));
            with_store(database, async |store| {
                // Who changed the inventory, from which file: an audited
                // configuration change, in the import's transaction.
                let event = NewEvent {
                    actor,
                    kind: "inventory.imported".into(),
                    run: None,
                    step: None,
                    device: None,
                    data: json!({
                        "file": file.display().to_string(),
                        "digest": format!("sha256:{}", hex::encode(sha256(text.as_bytes()))),
                        "devices": devices.iter().map(|d| &d.id).collect::<Vec<_>>(),
                    }),
                };
                let imported = store
                    .import_devices(&devices, event, chrono::Utc::now())
                    .await?;
                writeln!(
                    out.stdout,
                    "imported {} devices ({} new, {} updated)",
                    devices.len(),
                    imported.new,
                    imported.updated
                )?;
                Ok(exit::OK)
            })
        }
        InventoryCommand::List {
            select,
            json,
            database,
        } => with_store(database, async |store| {
            let devices = store.devices().await?;
            let devices = match select {
                Some(selector) => {
                    let ids = StoredInventory::new(devices.clone())
                        .ids(selector)
                        .map_err(|e| anyhow!("--select `{selector}`: {e}"))?;
                    devices
                        .into_iter()
                        .filter(|d| ids.contains(&d.id))
                        .collect()
                }
                None => devices,
            };
            if *json {
                let list: Vec<_> = devices.iter().map(device_json).collect();
                out.stdout
                    .push_str(&(serde_json::to_string_pretty(&list)? + "\n"));
                return Ok(exit::OK);
            }
            writeln!(
                out.stdout,
                "{:<16} {:<10} {:<12} {:<9} {:<10} TAGS",
                "ID", "TYPE", "SITE", "CRIT", "FIRMWARE"
            )?;
            for d in &devices {
                writeln!(
                    out.stdout,
                    "{:<16} {:<10} {:<12} {:<9} {:<10} {}",
                    d.id,
                    d.device_type,
                    d.site,
                    d.criticality,
                    d.firmware,
                    d.tags.join(",")
                )?;
            }
            Ok(exit::OK)
        }),
        InventoryCommand::Show { id, json, database } => with_store(database, async |store| {
            let Some(device) = store.device(id).await? else {
                writeln!(out.stderr, "no device `{id}` in the inventory")?;
                return Ok(exit::USAGE);
            };
            let value = device_json(&device);
            if *json {
                out.stdout
                    .push_str(&(serde_json::to_string_pretty(&value)? + "\n"));
            } else if let serde_json::Value::Object(fields) = value {
                for (key, value) in fields {
                    writeln!(
                        out.stdout,
                        "{key:<12} {}",
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_string)
                    )?;
                }
            }
            Ok(exit::OK)
        }),
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).to_vec()
}

/// A device as plugins and `--json` see it (nothing secret in it).
pub fn device_json(d: &DeviceRecord) -> serde_json::Value {
    json!({
        "id": d.id, "type": d.device_type, "site": d.site, "tags": d.tags,
        "criticality": d.criticality, "firmware": d.firmware, "cert_serial": d.cert_serial,
        "owner": d.owner, "drill": d.drill,
    })
}

/// One device as a file writes it (YAML or a CSV row).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceRow {
    id: String,
    #[serde(rename = "type")]
    device_type: String,
    site: String,
    #[serde(default)]
    tags: Tags,
    criticality: String,
    #[serde(default)]
    firmware: String,
    #[serde(default)]
    cert_serial: Option<String>,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    drill: bool,
}

/// Tags: a YAML list, or in CSV one cell with tags separated by `;`.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Tags {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

impl Tags {
    fn into_vec(self) -> Vec<String> {
        match self {
            Tags::None => Vec::new(),
            Tags::List(list) => list,
            Tags::Text(text) => text
                .split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

/// YAML: `devices:` list (or a bare list).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum YamlFile {
    Wrapped { devices: Vec<DeviceRow> },
    Bare(Vec<DeviceRow>),
}

/// Every device in the file, or every problem (`FILE:LINE: message` where
/// the line is known), all checked before anything is written.
fn parse(file: &Path, text: &str) -> Result<Vec<DeviceRecord>, Vec<String>> {
    let name = file.display();
    let csv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut rows: Vec<(String, DeviceRow)> = Vec::new();
    let mut problems = Vec::new();
    if csv {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = match reader.headers() {
            Ok(headers) => headers.clone(),
            Err(e) => return Err(vec![format!("{name}:1: error[inventory.format]: {e}")]),
        };
        for record in reader.records() {
            let parsed = record.and_then(|r| {
                let line = r.position().map_or(0, csv::Position::line);
                r.deserialize::<DeviceRow>(Some(&headers))
                    .map(|row| (line, row))
            });
            match parsed {
                Ok((line, row)) => rows.push((format!("{name}:{line}"), row)),
                Err(e) => {
                    let line = e.position().map_or(0, csv::Position::line);
                    problems.push(format!("{name}:{line}: error[inventory.row]: {e}"));
                }
            }
        }
    } else {
        match serde_yaml::from_str::<YamlFile>(text) {
            Ok(YamlFile::Wrapped { devices } | YamlFile::Bare(devices)) => {
                rows = devices
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| (format!("{name}: devices[{i}]"), d))
                    .collect();
            }
            Err(e) => {
                let at = e
                    .location()
                    .map_or_else(String::new, |l| format!(":{}:{}", l.line(), l.column()));
                problems.push(format!(
                    "{name}{at}: error[inventory.format]: {e} (expected `devices:` with id, type, site, criticality, and optionally tags, firmware, cert_serial, owner, drill)"
                ));
            }
        }
    }
    let (places, devices): (Vec<String>, Vec<DeviceRecord>) = rows
        .into_iter()
        .map(|(place, row)| {
            let device = DeviceRecord {
                id: row.id,
                device_type: row.device_type,
                site: row.site,
                tags: row.tags.into_vec(),
                criticality: row.criticality,
                firmware: row.firmware,
                cert_serial: row.cert_serial.filter(|s| !s.is_empty()),
                owner: row.owner,
                drill: row.drill,
            };
            (place, device)
        })
        .unzip();
    // The same checks as the API's import (storage owns them).
    for p in device_problems(&devices) {
        let place = places.get(p.index).map_or("?", String::as_str);
        problems.push(format!("{place}: error[{}]: {}", p.code, p.message));
    }
    if devices.is_empty() && problems.is_empty() {
        problems.push(format!(
            "{name}: error[inventory.empty]: no device in the file"
        ));
    }
    if problems.is_empty() {
        Ok(devices)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::path::Path;

    #[test]
    fn yaml_and_csv_give_the_same_devices() {
        let yaml = "devices:\n  - {id: plc-1, type: plc, site: plant-a, tags: [line-3, canary], criticality: high, firmware: 2.4.1}\n";
        let csv =
            "id,type,site,tags,criticality,firmware\nplc-1,plc,plant-a,line-3;canary,high,2.4.1\n";
        let a = parse(Path::new("f.yaml"), yaml).expect("yaml");
        let b = parse(Path::new("f.csv"), csv).expect("csv");
        assert_eq!(a, b);
        assert_eq!(a[0].tags, ["line-3", "canary"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let csv = "id,type,site,criticality\nplc-1,plc,plant-a,high\nplc-1,plc,plant-a,urgent\nbad id,,plant-b,low\n";
        let problems = parse(Path::new("f.csv"), csv).expect_err("problems");
        let text = problems.join("\n");
        assert!(
            text.contains("f.csv:3: error[inventory.duplicate]"),
            "{text}"
        );
        assert!(
            text.contains("f.csv:3: error[inventory.criticality]"),
            "{text}"
        );
        assert!(text.contains("f.csv:4: error[inventory.id]"), "{text}");
        assert!(
            text.contains("f.csv:4: error[inventory.missing]: `type`"),
            "{text}"
        );
        let broken = parse(Path::new("f.yaml"), "devices: [{id: x, colour: red}]")
            .expect_err("unknown field");
        assert!(broken[0].contains("error[inventory.format]"), "{broken:?}");
    }
}
