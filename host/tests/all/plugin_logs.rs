//! A plugin's log lines are bounded and defanged, and the host names the
//! plugin by its file and hash, not by what it claims to be.
//!
//! The `loud` guest logs 100 MiB (one message, then 100 000 small ones) in
//! one call, logs a message that embeds newlines, a carriage return and
//! ANSI escapes around a fake `INFO checkpoint committed` host line, and
//! its `describe()` claims to be `sluice-plugin-mask`.

use crate::support::*;

const FORGED_MARK: &str = "checkpoint committed epoch=999";

#[test]
fn a_log_flood_is_cut_forged_lines_are_escaped_and_the_pipeline_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for i in 0..30 {
        match i {
            7 => text.push_str(&format!("{{\"n\":{i},\"do\":\"flood\"}}\n")),
            19 => text.push_str(&format!("{{\"n\":{i},\"do\":\"forge\"}}\n")),
            23 => text.push_str(&format!("{{\"n\":{i},\"do\":\"reject\"}}\n")),
            _ => text.push_str(&format!("{{\"n\":{i}}}\n")),
        }
    }
    std::fs::write(&input, text).expect("write input");
    let out = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 4\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  loud:\n    plugin: {}\n    inputs: [in]\n    limits: {{memory_mb: 512, cpu_ms_per_call: 20000}}\nsinks:\n  out: {{type: file, path: {}, inputs: [loud]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            q(&guest("loud")),
            q(&out),
            q(&dead)
        ),
    );
    let run = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&run.stderr);

    let got: Vec<i64> = json_lines(&out)
        .iter()
        .filter_map(|v| v["n"].as_i64())
        .collect();
    let expected: Vec<i64> = (0..30).filter(|n| *n != 23).collect();
    assert_eq!(got, expected, "every other event goes through");

    assert!(
        run.stderr.len() < 1 << 20,
        "100 MiB of plugin logs must not reach stderr: {} bytes",
        run.stderr.len()
    );
    assert!(
        stderr.contains("log bytes dropped from plugin"),
        "the drop is reported:\n{}",
        &stderr[..stderr.len().min(4000)]
    );
    // The forged text appears only inside the plugin's own, escaped line.
    let forged_lines: Vec<&str> = stderr.lines().filter(|l| l.contains(FORGED_MARK)).collect();
    assert_eq!(
        forged_lines.len(),
        1,
        "one line carries it: {forged_lines:#?}"
    );
    let line = forged_lines[0];
    assert!(
        line.contains("innocent\\n2026-01-01") && line.contains("\\u{1b}[2K"),
        "escaped in place: {line}"
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r') && !stderr.contains('\u{2028}'),
        "no raw escape, carriage return or line separator reaches stderr"
    );
    assert!(
        !stderr
            .lines()
            .any(|l| l.trim_start().starts_with("2026-01-01T00:00:00")),
        "no forged line of its own"
    );

    // Identified by file and hash; the claim is shown as a claim.
    assert!(
        line.contains("loud (claims")
            && line.contains("sluice-plugin-mask@0.1.0")
            && line.contains("sha256 "),
        "the host's name for the plugin leads: {line}"
    );
    // Dead letters are raw events: readable by the owner only.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&dead)
            .expect("dead letters")
            .permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "dead-letter file mode {:o}",
        mode & 0o777
    );
    let dead = json_lines(&dead);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let named = dead[0]["headers"]["sluice.error.plugin"]
        .as_str()
        .unwrap_or_default();
    assert!(
        named.starts_with("loud (claims \"sluice-plugin-mask@0.1.0\", sha256 "),
        "the dead letter names the file and hash: {named}"
    );
}

#[test]
fn plugin_inspect_shows_the_hash_and_marks_the_self_description_as_a_claim() {
    let out = run_ok(sluice().args(["plugin", "inspect"]).arg(guest("loud")));
    let s = String::from_utf8_lossy(&out.stdout);
    let bytes = std::fs::read(guest("loud")).expect("read guest");
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(&bytes));
    assert!(s.contains(&format!("sha256:    {hash}")), "{s}");
    assert!(
        s.contains("plugin:    sluice-plugin-mask@0.1.0 (self-described, not verified"),
        "{s}"
    );
}

#[test]
fn a_stages_log_budget_bounds_what_one_call_prints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"n\":0}\n{\"n\":1,\"do\":\"flood\"}\n{\"n\":2}\n").expect("write");
    let out = dir.path().join("out.jsonl");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 1\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  loud:\n    plugin: {}\n    inputs: [in]\n    limits: {{memory_mb: 512, cpu_ms_per_call: 20000, log_kb_per_call: 4}}\nsinks:\n  out: {{type: file, path: {}, inputs: [loud]}}\n",
            q(&input),
            q(&guest("loud")),
            q(&out),
        ),
    );
    let run = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(json_lines(&out).len(), 3, "every event goes through");
    // 100 MiB and then 100 000 lines of 1 KiB in one call: the 4 MiB-cut
    // first message does not fit 4 KiB, four of the 1 KiB lines do.
    let kib = "B".repeat(1024);
    let printed = stderr.lines().filter(|l| l.contains(&kib)).count();
    assert_eq!(printed, 4, "4 KiB per call: {printed} lines of 1 KiB");
    assert!(
        stderr.contains("log bytes dropped from plugin")
            && stderr.contains("log_kb_per_call 4 KiB"),
        "the drop names the limit:\n{}",
        &stderr[..stderr.len().min(4000)]
    );
    assert!(
        run.stderr.len() < 64 << 10,
        "stderr {} bytes",
        run.stderr.len()
    );
}
