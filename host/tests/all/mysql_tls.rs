//! The `mysql` sink over TLS against a real MariaDB 10.11 started by
//! `scripts/services/mariadb.sh` with `SLUICE_MYSQL_TLS_DIR` set: a throwaway
//! CA, a server certificate for `localhost` only, and
//! `require_secure_transport=ON`, so plaintext clients are refused. That
//! instance refuses the plaintext suite, so it is a second one (its own
//! `SLUICE_SERVICES_DIR` and port) whose URL is in `SLUICE_MYSQL_TLS_URL`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::server_cert;
use crate::server_cert::other_ca;
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

fn tls_dir() -> PathBuf {
    PathBuf::from(env("SLUICE_MYSQL_TLS_DIR"))
}

fn ca() -> PathBuf {
    tls_dir().join("ca.crt")
}

fn port() -> String {
    let url = env("SLUICE_MYSQL_TLS_URL");
    url.rsplit(':')
        .next()
        .and_then(|s| s.split('/').next())
        .expect("port in SLUICE_MYSQL_TLS_URL")
        .to_string()
}

/// Runs `sql` as user etl over TLS without verifying the server's
/// certificate (it may be the expired one).
fn admin(sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ssl = mysql_async::SslOpts::default().with_danger_accept_invalid_certs(true);
        let opts = mysql_async::OptsBuilder::from_opts(
            mysql_async::Opts::from_url(&url("127.0.0.1")).expect("url"),
        )
        .ssl_opts(ssl);
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .expect("connect over TLS");
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.disconnect().await;
    })
}

/// The TLS server's URL with host `host`.
fn url(host: &str) -> String {
    env("SLUICE_MYSQL_TLS_URL").replace("127.0.0.1", host)
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
    let _cert = server_cert::lock(&tls_dir(), false);
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

/// Runs a pipeline from datagen into `table` with `tls`; its output.
fn run_sink(dir: &Path, url: &str, table: &str, tls: &str) -> std::process::Output {
    let p = pipeline(dir, url, table, tls);
    sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .output()
        .expect("sluice runs")
}

#[test]
fn mysql_sink_logs_in_with_a_client_certificate_and_is_refused_without_one() {
    let _cert = server_cert::lock(&tls_dir(), false);
    let dir = tempfile::tempdir().expect("tempdir");
    // User etl_x509 has no password and `REQUIRE SUBJECT '/CN=etl_x509'`.
    let (cert, key) = server_cert::client_cert(&tls_dir(), "etl_x509", dir.path());
    let (other_cert, other_key) = server_cert::client_cert(&tls_dir(), "someone_else", dir.path());
    let x509_url = url("localhost").replacen("etl:etl@", "etl_x509@", 1);
    assert!(x509_url.contains("etl_x509@localhost"), "{x509_url}");
    let table = format!("tls_x509_{}", std::process::id());
    let with = |cert: &Path, key: &Path| {
        format!(
            "{}      cert_file: {}\n      key_file: {}\n",
            tls_block("verify-full", &ca()),
            q(cert),
            q(key)
        )
    };
    let sub = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).expect("mkdir");
        d
    };
    let out = run_sink(&sub("cert"), &x509_url, &table, &with(&cert, &key));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&table), 5);

    // No certificate, and a certificate of the right CA for another subject.
    for (name, tls) in [
        ("none", tls_block("verify-full", &ca())),
        ("other", with(&other_cert, &other_key)),
    ] {
        let out = run_sink(&sub(name), &x509_url, &table, &tls);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{name}: expected a refusal: {err}");
        assert!(err.contains("refused the credentials"), "{name}: {err}");
        if name == "none" {
            assert!(
                err.contains("REQUIRE X509") && err.contains("tls.cert_file"),
                "{err}"
            );
        }
    }
}

#[test]
fn an_expired_server_certificate_stops_the_mysql_sink_with_the_fix() {
    // Every other test here verifies the server's certificate: they wait.
    let _cert = server_cert::lock(&tls_dir(), true);
    let dir = tempfile::tempdir().expect("tempdir");
    // MariaDB re-reads the files --ssl-cert and --ssl-key name on FLUSH SSL.
    let reload = || admin("FLUSH SSL");
    let _expired = server_cert::Expired::swap_in(&tls_dir(), "mysql", &port(), &reload);
    // The sink's default retries: an expired certificate must stop the run
    // at once all the same.
    let tls = tls_block("verify-full", &ca());
    let p = pipeline(dir.path(), &url("localhost"), "tls_expired", &tls);
    let text = std::fs::read_to_string(&p).expect("pipeline");
    std::fs::write(&p, text.replace("    max_retries: 0\n", "")).expect("write");
    let t0 = Instant::now();
    let out = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .output()
        .expect("sluice runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure: {err}");
    assert!(
        err.contains("has expired") && err.contains("Fix: renew the server's certificate"),
        "{err}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "took {:?}, so it was retried: {err}",
        t0.elapsed()
    );
}
