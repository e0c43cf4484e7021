//! Parse + validate benchmark: a generated 500-step playbook (and smaller
//! ones for scale). Prints median and p95 per size.
//!
//! `cargo bench -p cordon-playbook --bench validate [-- --iterations N]`

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use cordon_playbook::{Context, PluginCatalog, PluginDescriptor, validate};

/// A realistic playbook of `n` steps: containment actions in parallel
/// branches joined by approval gates, fan-outs over inventory selections,
/// irreversible actions behind gates, and expressions reading upstream outputs.
fn playbook(n: usize) -> String {
    let mut y = String::from(
        "cordon: v1\nname: bench\nversion: 1.0.0\ninputs:\n  device: {type: device}\n  group: {type: string, default: line-3}\nsteps:\n",
    );
    for i in 0..n {
        let needs = match i {
            0 => String::new(),
            _ if i % 10 == 0 => format!("    needs: [s{}, s{}]\n", i - 1, i - 5),
            _ => format!("    needs: [s{}]\n", i - 1),
        };
        let _ = match i % 5 {
            0 => write!(
                y,
                "  - id: s{i}\n{needs}    uses: isolate@1\n    with: {{device: '${{{{ inputs.device }}}}', mode: soft, reason: 'step {i}'}}\n    retry: {{attempts: 3, backoff: 2s}}\n    timeout: 1m\n"
            ),
            1 => write!(
                y,
                "  - id: s{i}\n{needs}    approval:\n      approvers: {{roles: [security-lead]}}\n      min: 2\n      timeout: 30m\n      message: 'Proceed with ${{{{ inputs.device }}}}?'\n"
            ),
            2 => write!(
                y,
                "  - id: s{i}\n{needs}    uses: revoke-cert@1\n    with: {{device: '${{{{ inputs.device }}}}', reason: keyCompromise}}\n"
            ),
            3 => write!(
                y,
                "  - id: s{i}\n{needs}    if: 'inputs.device.startsWith(\"plc-\") && steps.s{}.outputs.serial != \"\"'\n    foreach: {{items: '${{{{ inventory.select(\"tag=\" + inputs.group) }}}}', concurrency: 10, waves: [1, 10%, 100%], max_failures: 2}}\n    uses: rollback-firmware@1\n    with: {{device: '${{{{ item.id }}}}', image: safe-2.4.1}}\n",
                i - 1
            ),
            _ => write!(
                y,
                "  - id: s{i}\n{needs}    notify:\n      to: ['role:on-call']\n      subject: 'step {i} done for ${{{{ inputs.device }}}}'\n"
            ),
        };
    }
    y
}

fn catalog() -> PluginCatalog {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/descriptors");
    let mut descriptors = Vec::new();
    for entry in std::fs::read_dir(dir).expect("plugins/descriptors") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        descriptors.push(serde_json::from_str::<PluginDescriptor>(&text).expect("descriptor"));
    }
    PluginCatalog::new(descriptors).expect("catalog")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let iterations: usize = std::env::args()
        .skip_while(|a| a != "--iterations")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let catalog = catalog();
    let ctx = Context::new(&catalog);
    println!("parse + validate, {iterations} iterations per size (plus 3 warm-up)");
    for steps in [10, 100, 500, 2000] {
        let source = playbook(steps);
        let check = validate("bench.yaml", source.as_bytes(), &ctx);
        assert!(
            !check.has_errors(),
            "the generated playbook must be valid: {:#?}",
            &check.diagnostics[..check.diagnostics.len().min(3)]
        );
        for _ in 0..3 {
            black_box(validate("bench.yaml", black_box(source.as_bytes()), &ctx));
        }
        let mut times: Vec<Duration> = (0..iterations)
            .map(|_| {
                let start = Instant::now();
                black_box(validate("bench.yaml", black_box(source.as_bytes()), &ctx));
                start.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "{steps:>5} steps ({:>7} bytes): median {:>9.3} ms  p95 {:>9.3} ms  min {:>9.3} ms",
            source.len(),
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.95).as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
        );
    }
}
