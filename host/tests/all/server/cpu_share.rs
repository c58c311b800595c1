//! The fair CPU share between tenants on a real server: a tenant running
//! more busy pipelines than another is held to its weighted share while the
//! other is active, and the wait is reported. The figures of the share
//! (throughput of the quiet tenant, alone and beside a noisy one) are a
//! benchmark, `scripts/bench-cpu-share.py`, not this test.

use serde_json::Value;

use super::{tenant, write_config, Server, ADMIN};

/// A pipeline that keeps one core busy: orders as fast as they come,
/// through a plugin stage that keeps none of them.
fn busy(name: &str) -> Vec<u8> {
    format!(
        "name: {name}\nsources:\n  gen: {{type: datagen, kind: orders}}\nstages:\n  none:\n    plugin: filter\n    inputs: [gen]\n    params: {{where: \"price < 0\"}}\nsinks:\n  out: {{type: file, path: {name}.jsonl, inputs: [none]}}\n"
    )
    .into_bytes()
}

fn cpu(s: &Server, tenant: &str) -> (f64, f64) {
    let v: Value = s.ok("GET", &format!("/v1/tenants/{tenant}"), Some(ADMIN), None);
    (
        v["cpu_seconds"].as_f64().expect("cpu_seconds"),
        v["cpu_throttled_seconds"]
            .as_f64()
            .expect("cpu_throttled_seconds"),
    )
}

#[test]
fn a_tenant_with_more_busy_pipelines_is_held_to_its_weighted_share() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[tenants.noisy]\ncpu_weight = 100\n[tenants.quiet]\ncpu_weight = 400\n",
    );
    let s = Server::start(dir.path());
    let noisy = tenant(&s, "noisy", "deploy");
    let quiet = tenant(&s, "quiet", "deploy");
    for name in ["n1", "n2", "n3"] {
        s.ok("POST", "/v1/pipelines", Some(&noisy), Some(busy(name)));
    }
    s.ok("POST", "/v1/pipelines", Some(&quiet), Some(busy("q1")));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (n0, _) = cpu(&s, "noisy");
    let (q0, _) = cpu(&s, "quiet");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let (n1, noisy_waited) = cpu(&s, "noisy");
    let (q1, _) = cpu(&s, "quiet");
    let (noisy_used, quiet_used) = (n1 - n0, q1 - q0);
    // Three busy pipelines against one: the kernel alone would give the
    // noisy tenant about three times the quiet one's CPU. Its weight gives
    // it a fifth of the machine while the quiet tenant is active.
    assert!(noisy_waited > 0.0, "the noisy tenant waited for its share");
    assert!(
        noisy_used < quiet_used,
        "noisy used {noisy_used:.2} CPU-s, quiet {quiet_used:.2} CPU-s"
    );
    assert!(quiet_used > 0.5, "quiet used {quiet_used:.2} CPU-s in 4 s");

    // The figures are in /metrics too, each tenant seeing only its own.
    let text = |token: &str| super::metrics(&s, token);
    let mine = text(&noisy);
    assert!(
        mine.contains("sluice_tenant_cpu_throttled_seconds_total{tenant=\"noisy\"}"),
        "{mine}"
    );
    assert!(!mine.contains("tenant=\"quiet\""), "{mine}");
    assert!(text(ADMIN).contains("sluice_tenant_cpu_seconds_total{tenant=\"quiet\"}"));
    for name in ["n1", "n2", "n3"] {
        s.ok(
            "POST",
            &format!("/v1/pipelines/{name}/stop"),
            Some(&noisy),
            None,
        );
    }
    s.ok("POST", "/v1/pipelines/q1/stop", Some(&quiet), None);
}
