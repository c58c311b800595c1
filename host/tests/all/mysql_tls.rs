//! The `mysql` sink over TLS against a real MariaDB 10.11 started by
//! `scripts/services/mariadb.sh` with `SLUICE_MYSQL_TLS_DIR` set: a throwaway
//! CA, a server certificate for `localhost` only, and
//! `require_secure_transport=ON`, so plaintext clients are refused. That
//! instance refuses the plaintext suite, so it is a second one (its own
//! `SLUICE_SERVICES_DIR` and port) whose URL is in `SLUICE_MYSQL_TLS_URL`.

use std::path::{Path, PathBuf};
use std::process::Command;

use mysql_async::prelude::Queryable;

use crate::support::*;

fn env(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{var} is not set: start a second MariaDB with TLS, e.g. `SLUICE_SERVICES_DIR=/tmp/sluice-services/mtls \
             SLUICE_MYSQL_PORT=13307 SLUICE_MYSQL_TLS_DIR=/tmp/sluice-services/mtls/certs scripts/services/mariadb.sh start`, \
             then export SLUICE_MYSQL_TLS_DIR and SLUICE_MYSQL_TLS_URL (the URL it prints)"
        ),
    }
}

fn ca() -> PathBuf {
    Path::new(&env("SLUICE_MYSQL_TLS_DIR")).join("ca.crt")
}

/// The TLS server's URL with host `host`.
fn url(host: &str) -> String {
    env("SLUICE_MYSQL_TLS_URL").replace("127.0.0.1", host)
}

fn other_ca(dir: &Path) -> PathBuf {
    let cert = dir.join("other-ca.crt");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=some other CA", "-keyout"])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cert
}

fn pipeline(dir: &Path, url: &str, table: &str, tls: &str) -> PathBuf {
    write_pipeline(
        dir,
        &format!(
            "sources:\n  gen: {{type: datagen, kind: people, count: 5}}\nsinks:\n  db:\n    type: mysql\n    inputs: [gen]\n    url: {}\n    table: {table}\n    mode: upsert\n    key_fields: [id]\n    max_retries: 0\n{tls}",
            serde_json::to_string(url).expect("json")
        ),
    )
}

fn tls_block(mode: &str, ca: &Path) -> String {
    format!("    tls:\n      mode: {mode}\n      ca_file: {}\n", q(ca))
}

fn count(table: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ssl = mysql_async::SslOpts::default()
            .with_root_certs(vec![ca().into()])
            .with_disable_built_in_roots(true);
        let opts = mysql_async::OptsBuilder::from_opts(
            mysql_async::Opts::from_url(&url("localhost")).expect("url"),
        )
        .ssl_opts(ssl);
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .expect("connect over TLS");
        let n: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM `{table}`"))
            .await
            .expect("count");
        let _ = conn.disconnect().await;
        n.unwrap_or(0)
    })
}

#[test]
fn mysql_sink_over_tls_and_its_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = format!("tls_people_{}", std::process::id());
    // A directory per run, so no run resumes another's checkpoint.
    let runs = std::cell::Cell::new(0);
    let fresh = || {
        runs.set(runs.get() + 1);
        let d = dir.path().join(format!("run{}", runs.get()));
        std::fs::create_dir(&d).expect("mkdir");
        d
    };
    let run = |url: &str, table: &str, tls: &str| {
        let p = pipeline(&fresh(), url, table, tls);
        sluice()
            .arg("run")
            .arg(&p)
            .arg("--no-progress")
            .output()
            .expect("sluice runs")
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let failed = |out: std::process::Output| {
        assert!(!out.status.success(), "expected a failure");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    ok(run(
        &url("localhost"),
        &table,
        &tls_block("verify-full", &ca()),
    ));
    assert_eq!(count(&table), 5);

    // By address, verifying the certificate's name through `server_name`.
    let by_ip = format!("{table}_by_ip");
    let tls = format!(
        "{}      server_name: localhost\n",
        tls_block("verify-full", &ca())
    );
    ok(run(&url("127.0.0.1"), &by_ip, &tls));
    assert_eq!(count(&by_ip), 5);

    let other = other_ca(dir.path());
    let err = failed(run(
        &url("localhost"),
        &table,
        &tls_block("verify-full", &other),
    ));
    assert!(
        err.contains("is not signed by a trusted CA") && err.contains("Fix: set `tls.ca_file`"),
        "{err}"
    );
    let err = failed(run(
        &url("127.0.0.1"),
        &table,
        &tls_block("verify-full", &ca()),
    ));
    assert!(
        err.contains("is not valid for the host name `127.0.0.1`")
            && err.contains("tls.server_name"),
        "{err}"
    );
    // MariaDB answers a plaintext client with "access denied": the message
    // says TLS may be why.
    let err = failed(run(&url("localhost"), &table, ""));
    assert!(
        err.contains("require_secure_transport") && err.contains("tls: {mode: verify-full"),
        "{err}"
    );
    assert!(!err.contains("etl:etl"), "the password leaked: {err}");
    // verify-ca is refused at validation (mysql_async cannot skip only the name check).
    let err = failed(run(
        &url("127.0.0.1"),
        &table,
        &tls_block("verify-ca", &ca()),
    ));
    assert!(
        err.contains("tls.mode") && err.contains("`verify-ca` is not supported"),
        "{err}"
    );
}
