//! `cordon inventory import|list|show`, and a rollout over what was imported.

mod cli_support;

use cli_support::{Scratch, text};

const FLEET: &str = "devices:
  - {id: plc-1, type: plc, site: plant-a, tags: [line-3], criticality: high, firmware: 2.4.1, owner: ot}
  - {id: plc-2, type: plc, site: plant-a, tags: [line-3, canary], criticality: critical, firmware: 2.4.1}
  - {id: gw-1, type: gateway, site: plant-b, criticality: low}
";

/// One device's treatment (a sub-playbook, so the rollout needs no plugin).
const LEAF: &str = "cordon: v1
name: leaf
version: 1.0.0
inputs:
  device: {type: string}
steps:
  - id: settle
    wait: 1ms
";

const ROLLOUT: &str = "cordon: v1
name: touch
version: 1.0.0
steps:
  - id: each
    foreach: {items: '${{ inventory.select(\"tag=line-3\") }}'}
    playbook: leaf@1.0.0
    with: {device: '${{ item.id }}'}
";

#[test]
fn an_imported_inventory_is_listed_selected_and_rolled_out_over() {
    let s = Scratch::new();
    std::fs::write(s.path().join("fleet.yaml"), FLEET).expect("write");
    let import = s.cordon(&["inventory", "import", "fleet.yaml"]);
    assert!(import.status.success(), "{}", text(&import.stderr));
    assert!(
        text(&import.stdout).contains("imported 3 devices (3 new, 0 updated)"),
        "{}",
        text(&import.stdout)
    );
    // A CSV update: one changed, one new.
    std::fs::write(
        s.path().join("more.csv"),
        "id,type,site,tags,criticality,firmware\ngw-1,gateway,plant-b,,medium,1.0\nplc-3,plc,plant-c,line-3;drill,high,2.5.0\n",
    )
    .expect("write");
    let csv = s.cordon(&["inventory", "import", "more.csv"]);
    assert!(
        text(&csv.stdout).contains("imported 2 devices (1 new, 1 updated)"),
        "{}",
        text(&csv.stdout)
    );

    let list = s.cordon(&[
        "inventory",
        "list",
        "--select",
        "tag=line-3,criticality>=high",
        "--json",
    ]);
    let picked: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let ids: Vec<&str> = picked
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["plc-1", "plc-2", "plc-3"]);
    let show = s.cordon(&["inventory", "show", "gw-1", "--json"]);
    let gw: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(gw["criticality"], "medium");
    assert_eq!(
        s.cordon(&["inventory", "show", "nope"]).status.code(),
        Some(2)
    );
    let bad = s.cordon(&["inventory", "list", "--select", "colour=red"]);
    assert!(!bad.status.success());

    s.publish("leaf.yaml", LEAF);
    s.publish("touch.yaml", ROLLOUT);
    let run = s.cordon(&["run", "touch", "--wait"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let id = text(&run.stdout).trim().to_string();
    let shown = s.cordon(&["runs", "show", &id, "--json"]);
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    let each = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|st| st["key"] == "each")
        .expect("each");
    assert_eq!(each["outputs"]["succeeded"], 3, "{each}");
    // One child run per selected device, given its id.
    let audit = s.cordon(&["audit", "query", "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&audit.stdout).expect("json");
    let mut children: Vec<&str> = events
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["kind"] == "run.created" && e["data"]["playbook"] == "leaf")
        .map(|e| e["data"]["inputs"]["device"].as_str().expect("device"))
        .collect();
    children.sort_unstable();
    assert_eq!(children, ["plc-1", "plc-2", "plc-3"]);
    // Who changed the inventory is in the audit log.
    let audit = text(
        &s.cordon(&["audit", "query", "--actor", "user:alice"])
            .stdout,
    );
    assert_eq!(audit.matches("inventory.imported").count(), 2, "{audit}");
}

#[test]
fn an_invalid_file_writes_nothing() {
    let s = Scratch::new();
    std::fs::write(
        s.path().join("bad.csv"),
        "id,type,site,criticality\nplc-1,plc,plant-a,high\nplc-1,plc,plant-a,urgent\n",
    )
    .expect("write");
    let import = s.cordon(&["inventory", "import", "bad.csv"]);
    assert_eq!(import.status.code(), Some(1));
    let said = text(&import.stderr);
    assert!(
        said.contains("bad.csv:3: error[inventory.duplicate]"),
        "{said}"
    );
    assert!(said.contains("nothing imported"), "{said}");
    let list = s.cordon(&["inventory", "list", "--json"]);
    assert_eq!(text(&list.stdout).trim(), "[]");
}
