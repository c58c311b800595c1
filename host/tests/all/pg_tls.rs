//! PostgreSQL over TLS: `postgres-cdc`, `postgres-poll` and the `postgres`
//! sink against a real PostgreSQL 15 with `ssl=on`, started by
//! `scripts/services/postgres.sh` with `SLUICE_PG_TLS_DIR` set. That makes a
//! throwaway CA and a server certificate for `localhost` (not `127.0.0.1`),
//! and role `sluice_tls` whose pg_hba rules are `hostssl` only, so a
//! plaintext connection as that role is refused. A second, unrelated CA is
//! made here at test time with the openssl command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::postgres_cdc::Pg;
use crate::server_cert;
use crate::server_cert::other_ca;
use crate::support::*;

const USER: &str = "sluice_tls";
const PASSWORD: &str = "sluice-tls-secret";

fn tls_dir() -> PathBuf {
    match std::env::var_os("SLUICE_PG_TLS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => panic!(
            "SLUICE_PG_TLS_DIR is not set: start PostgreSQL with TLS, e.g. \
             `export SLUICE_PG_TLS_DIR=/tmp/sluice-services/pg-tls; export \"$(scripts/services/postgres.sh start)\"` \
             (scripts/test.sh does)"
        ),
    }
}

fn ca() -> PathBuf {
    tls_dir().join("ca.crt")
}

/// The port of the server in `SLUICE_PG_URL`.
fn port() -> String {
    let url = service("SLUICE_PG_URL", "postgres");
    url.rsplit(':')
        .next()
        .and_then(|s| s.split('/').next())
        .expect("port in SLUICE_PG_URL")
        .to_string()
}

/// A URL for `sluice_tls` at `host` in database `db`, with a password or not.
fn url(host: &str, db: &str, password: bool) -> String {
    let pw = if password {
        format!(":{PASSWORD}")
    } else {
        String::new()
    };
    format!("postgres://{USER}{pw}@{host}:{}/{db}", port())
}

/// A fresh database (made over the plaintext admin connection) with table
/// `items` holding three rows.
fn database(prefix: &str) -> (Pg, String) {
    let pg = Pg::fresh(prefix);
    pg.exec(
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    );
    let db = pg.url.rsplit('/').next().expect("db").to_string();
    (pg, db)
}

fn poll_source(url: &str, tls: &str) -> String {
    format!(
        "    type: postgres-poll\n    url: {}\n    tables: [items]\n    mode: incrementing\n    incrementing_column: id\n    stop_when_idle: true\n    poll_interval_ms: 100\n{tls}",
        serde_json::to_string(url).expect("json")
    )
}

fn cdc_source(url: &str, tls: &str, slot: &str) -> String {
    format!(
        "    type: postgres-cdc\n    url: {}\n    tables: [items]\n    slot: {slot}\n    snapshot: initial_only\n{tls}",
        serde_json::to_string(url).expect("json")
    )
}

fn tls_block(mode: &str, ca: &Path, extra: &str) -> String {
    format!(
        "    tls:\n      mode: {mode}\n      ca_file: {}\n{extra}",
        q(ca)
    )
}

fn pipeline(dir: &Path, source: &str, sink: &str) -> PathBuf {
    write_pipeline(
        dir,
        &format!(
            "name: tls\ncheckpoint_interval_ms: 200\nsources:\n  pg:\n{source}\nsinks:\n  out:\n    inputs: [pg]\n{sink}\n"
        ),
    )
}

fn file_sink(out: &Path) -> String {
    format!("    type: file\n    path: {}\n    format: envelope", q(out))
}

fn pg_sink(url: &str, tls: &str) -> String {
    format!(
        "    type: postgres\n    url: {}\n    table: copied\n    key_fields: [id]\n    mode: upsert\n    max_retries: 0\n{tls}",
        serde_json::to_string(url).expect("json")
    )
}

fn run(p: &Path) -> std::process::Output {
    sluice()
        .arg("run")
        .arg(p)
        .arg("--no-progress")
        .env("RUST_LOG", "debug")
        .output()
        .expect("sluice runs")
}

fn both(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn failure(p: &Path) -> String {
    let out = run(p);
    assert!(!out.status.success(), "expected a failure:\n{}", both(&out));
    both(&out)
}

#[test]
fn cdc_poll_and_sink_run_over_verify_full() {
    let _cert = server_cert::lock(&tls_dir(), false);
    let (pg, db) = database("tls_ok");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let ca = ca();

    // CDC with libpq's spelling in the URL: the catalog connection and the
    // replication connection (its own SSLRequest) both go over verify-full.
    let cdc_url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        url("localhost", &db, true),
        ca.display()
    );
    let slot = format!("tls_{}", std::process::id());
    let p = pipeline(
        dir.path(),
        &cdc_source(&cdc_url, "", &slot),
        &file_sink(&out),
    );
    let o = run(&p);
    assert!(o.status.success(), "{}", both(&o));
    let ids: Vec<i64> = json_lines(&out)
        .iter()
        .filter_map(|l| l["value"]["after"]["id"].as_i64())
        .collect();
    assert_eq!(ids.len(), 3, "{}", both(&o));
    std::fs::remove_file(&out).expect("rm");

    // Poll into the sink, both with a `tls:` block; the sink connects to
    // 127.0.0.1 and verifies the certificate's name through `server_name`.
    let sink_tls = tls_block("verify-full", &ca, "      server_name: localhost\n");
    // Another pipeline: its own directory, so no checkpoint of the first.
    let poll_dir = dir.path().join("poll");
    std::fs::create_dir(&poll_dir).expect("mkdir");
    let p = pipeline(
        &poll_dir,
        // `channel_binding=require`: tokio-postgres refuses to connect
        // unless SCRAM is bound to the TLS channel.
        &poll_source(
            &format!("{}?channel_binding=require", url("localhost", &db, true)),
            &tls_block("verify-full", &ca, ""),
        ),
        &pg_sink(&url("127.0.0.1", &db, true), &sink_tls),
    );
    let o = run(&p);
    assert!(o.status.success(), "{}", both(&o));
    assert_eq!(
        pg.scalar("SELECT string_agg(name, ',' ORDER BY id) FROM copied")
            .as_deref(),
        Some("a,b,c")
    );
}

#[test]
fn cdc_streams_over_tls_with_a_bound_scram_exchange() {
    let _cert = server_cert::lock(&tls_dir(), false);
    let (pg, db) = database("tls_stream");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    // verify-ca: the chain is checked, the name (127.0.0.1, not in the
    // certificate) is not.
    let source = format!(
        "    type: postgres-cdc\n    url: {}\n    tables: [items]\n    slot: tls_stream_{}\n    heartbeat_interval_ms: 200\n{}",
        serde_json::to_string(&url("127.0.0.1", &db, true)).expect("json"),
        std::process::id(),
        tls_block("verify-ca", &ca(), "")
    );
    let p = pipeline(dir.path(), &source, &file_sink(&out));
    let log = dir.path().join("stderr.log");
    let mut child = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .env("RUST_LOG", "sluice=debug")
        .stdout(Stdio::null())
        // A file, not a pipe: nobody reads a pipe until the end.
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn sluice");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut inserted = false;
    loop {
        let n = json_lines_if_any(&out).len();
        if n >= 3 && !inserted {
            pg.exec("INSERT INTO items VALUES (4, 'streamed')");
            inserted = true;
        }
        if n >= 4 {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("sluice exited ({status}) with {n} lines:\n{err}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("only {n} lines after 60s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The walsender serving the source runs on TLS.
    let ssl = pg.scalar(
        "SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.usename = 'sluice_tls' AND a.backend_type = 'walsender'",
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{logs}");
    assert_eq!(ssl.as_deref(), Some("true"));
    // The replication client bound SCRAM to the channel (SCRAM-SHA-256-PLUS).
    assert!(
        logs.contains("replication connection open") && logs.contains("channel_binding=true"),
        "{logs}"
    );
    let last = json_lines(&out).last().cloned().expect("a line");
    assert_eq!(last["value"]["after"]["name"], "streamed");
}

fn json_lines_if_any(path: &Path) -> Vec<serde_json::Value> {
    if path.exists() {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    } else {
        Vec::new()
    }
}

/// Builds a pipeline from a URL and a `tls:` block.
type MakePipeline<'a> = Box<dyn Fn(&str, &str) -> PathBuf + 'a>;

#[test]
fn wrong_ca_wrong_host_and_plaintext_are_refused_with_the_fix() {
    let _cert = server_cert::lock(&tls_dir(), false);
    let (_pg, db) = database("tls_bad");
    let dir = tempfile::tempdir().expect("tempdir");
    let other = other_ca(dir.path());
    let out = dir.path().join("out.jsonl");
    let good = ca();
    let slot = format!("tls_bad_{}", std::process::id());
    // Each connector, as a pipeline whose only TLS connection is that one.
    let cases: Vec<(&str, MakePipeline)> = vec![
        (
            "postgres-cdc",
            Box::new(|u: &str, t: &str| {
                pipeline(dir.path(), &cdc_source(u, t, &slot), &file_sink(&out))
            }),
        ),
        (
            "postgres-poll",
            Box::new(|u: &str, t: &str| pipeline(dir.path(), &poll_source(u, t), &file_sink(&out))),
        ),
        (
            "postgres sink",
            Box::new(|u: &str, t: &str| {
                pipeline(
                    dir.path(),
                    "    type: datagen\n    kind: people\n    count: 3",
                    &pg_sink(u, t),
                )
            }),
        ),
    ];
    for (what, make) in &cases {
        let err = failure(&make(
            &url("localhost", &db, true),
            &tls_block("verify-full", &other, ""),
        ));
        assert!(
            err.contains("is not signed by a trusted CA") && err.contains("Fix: set `tls.ca_file`"),
            "{what}, wrong CA: {err}"
        );
        let err = failure(&make(
            &url("127.0.0.1", &db, true),
            &tls_block("verify-full", &good, ""),
        ));
        assert!(
            err.contains("is not valid for the host name `127.0.0.1`")
                && err.contains("set `tls.server_name`"),
            "{what}, wrong host: {err}"
        );
        let err = failure(&make(&url("localhost", &db, true), ""));
        assert!(
            err.contains("requires TLS for this connection") && err.contains("mode: verify-full"),
            "{what}, plaintext: {err}"
        );
        assert!(
            !err.contains(PASSWORD),
            "{what}: the password leaked: {err}"
        );
    }
}

#[test]
fn the_password_never_reaches_the_logs() {
    let _cert = server_cert::lock(&tls_dir(), false);
    let (pg, db) = database("tls_secret");
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("pg-password");
    std::fs::write(&secret, format!("{PASSWORD}\n")).expect("write");
    let tls = format!(
        "{}    password_file: {}\n",
        tls_block("verify-full", &ca(), ""),
        q(&secret)
    );
    let p = pipeline(
        dir.path(),
        &poll_source(&url("localhost", &db, false), &tls),
        &pg_sink(&url("localhost", &db, false), &tls),
    );
    let o = run(&p);
    let logs = both(&o);
    assert!(o.status.success(), "{logs}");
    assert_eq!(
        pg.scalar("SELECT count(*) FROM copied").as_deref(),
        Some("3")
    );
    assert!(logs.contains("DEBUG"), "debug logging was on: {logs}");
    assert!(
        !logs.contains(PASSWORD),
        "the password is in the logs: {logs}"
    );
    // A failing run with the password in the URL does not print it either.
    let other = other_ca(dir.path());
    let p = pipeline(
        dir.path(),
        &poll_source(
            &url("localhost", &db, true),
            &tls_block("verify-full", &other, ""),
        ),
        &file_sink(&dir.path().join("out.jsonl")),
    );
    let err = failure(&p);
    assert!(
        !err.contains(PASSWORD),
        "the password is in the logs: {err}"
    );
    let o = sluice().arg("validate").arg(&p).output().expect("validate");
    assert!(!both(&o).contains(PASSWORD), "{}", both(&o));
}

/// A client certificate for role `sluice_tls_cert`, signed by the server's CA.
fn client_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (key, csr, cert) = (
        dir.join("client.key"),
        dir.join("client.csr"),
        dir.join("client.crt"),
    );
    let openssl = |args: &[&std::ffi::OsStr]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |x: &str| std::ffi::OsString::from(x);
    openssl(&[
        &s("req"),
        &s("-newkey"),
        &s("rsa:2048"),
        &s("-nodes"),
        &s("-subj"),
        &s("/CN=sluice_tls_cert"),
        &s("-keyout"),
        key.as_os_str(),
        &s("-out"),
        csr.as_os_str(),
    ]);
    let serial = format!("{}", std::process::id());
    // Extensions make it an X.509 v3 certificate (webpki refuses v1).
    let ext = dir.join("client.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .expect("write");
    let ca_key = tls_dir().join("ca.key");
    openssl(&[
        &s("x509"),
        &s("-req"),
        &s("-in"),
        csr.as_os_str(),
        &s("-CA"),
        ca().as_os_str(),
        &s("-CAkey"),
        ca_key.as_os_str(),
        &s("-set_serial"),
        &s(&serial),
        &s("-days"),
        &s("1"),
        &s("-out"),
        cert.as_os_str(),
        &s("-extfile"),
        ext.as_os_str(),
    ]);
    (cert, key)
}

#[test]
fn client_certificates_log_in_cdc_and_poll() {
    let _cert = server_cert::lock(&tls_dir(), false);
    let (_pg, db) = database("tls_cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = client_cert(dir.path());
    let out = dir.path().join("out.jsonl");
    let user_url = format!("postgres://sluice_tls_cert@localhost:{}/{db}", port());
    let with_cert = tls_block(
        "verify-full",
        &ca(),
        &format!(
            "      cert_file: {}\n      key_file: {}\n",
            q(&cert),
            q(&key)
        ),
    );
    // CDC: the catalog connection and the replication connection both log in
    // with the certificate (pg_hba `cert`: no password at all).
    let slot = format!("tls_cert_{}", std::process::id());
    let p = pipeline(
        dir.path(),
        &cdc_source(&user_url, &with_cert, &slot),
        &file_sink(&out),
    );
    let o = run(&p);
    assert!(o.status.success(), "{}", both(&o));
    assert_eq!(json_lines(&out).len(), 3, "{}", both(&o));

    let run_dir = dir.path().join("poll");
    std::fs::create_dir(&run_dir).expect("mkdir");
    let out = run_dir.join("out.jsonl");
    let p = pipeline(
        &run_dir,
        &poll_source(&user_url, &with_cert),
        &file_sink(&out),
    );
    let o = run(&p);
    assert!(o.status.success(), "{}", both(&o));
    assert_eq!(json_lines(&out).len(), 3, "{}", both(&o));

    // Without the certificate: refused, and the message says what to set.
    let p = pipeline(
        &run_dir,
        &poll_source(&user_url, &tls_block("verify-full", &ca(), "")),
        &file_sink(&out),
    );
    let err = failure(&p);
    assert!(
        err.contains("requires a client certificate") && err.contains("tls.cert_file"),
        "{err}"
    );
}

#[test]
fn the_sink_logs_in_with_a_client_certificate_and_is_refused_without_one() {
    let _cert = server_cert::lock(&tls_dir(), false);
    let (pg, db) = database("tls_sink_cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = client_cert(dir.path());
    let cert_url = format!("postgres://sluice_tls_cert@localhost:{}/{db}", port());
    let with_cert = tls_block(
        "verify-full",
        &ca(),
        &format!(
            "      cert_file: {}\n      key_file: {}\n",
            q(&cert),
            q(&key)
        ),
    );
    // The source logs in with a password; the sink with its certificate
    // only (pg_hba `cert`: the server checks the CN against the role).
    let p = pipeline(
        dir.path(),
        &poll_source(
            &url("localhost", &db, true),
            &tls_block("verify-full", &ca(), ""),
        ),
        &pg_sink(&cert_url, &with_cert),
    );
    let o = run(&p);
    assert!(o.status.success(), "{}", both(&o));
    assert_eq!(
        pg.scalar("SELECT string_agg(name, ',' ORDER BY id) FROM copied")
            .as_deref(),
        Some("a,b,c")
    );
    // The sink's connections were the certificate's role, over TLS.
    assert_eq!(
        pg.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'copied'")
            .as_deref(),
        Some("sluice_tls_cert")
    );

    // Another directory: no checkpoint of the first run to resume.
    let refused = dir.path().join("refused");
    std::fs::create_dir(&refused).expect("mkdir");
    let p = pipeline(
        &refused,
        "    type: datagen\n    kind: people\n    count: 3",
        &pg_sink(&cert_url, &tls_block("verify-full", &ca(), "")),
    );
    let err = failure(&p);
    assert!(
        err.contains("requires a client certificate") && err.contains("tls.cert_file"),
        "{err}"
    );
}

#[test]
fn an_expired_server_certificate_stops_each_connector_with_the_fix() {
    // Every other test here verifies the server's certificate: they wait.
    let _cert = server_cert::lock(&tls_dir(), true);
    let (pg, db) = database("tls_expired");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    // `ssl_cert_file` is set on the server's command line, so the files it
    // names are rewritten and re-read (SIGHUP), not the setting changed.
    let reload = || pg.exec("SELECT pg_reload_conf()");
    let _expired = server_cert::Expired::swap_in(&tls_dir(), "postgres", &port(), &reload);
    let slot = format!("tls_exp_{}", std::process::id());
    let verify = tls_block("verify-full", &ca(), "");
    // A directory per pipeline: each file is written before any runs.
    let sub = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).expect("mkdir");
        d
    };
    let cases = [
        (
            "postgres-cdc",
            pipeline(
                &sub("cdc"),
                &cdc_source(&url("localhost", &db, true), &verify, &slot),
                &file_sink(&out),
            ),
        ),
        (
            "postgres-poll",
            pipeline(
                &sub("poll"),
                &poll_source(&url("localhost", &db, true), &verify),
                &file_sink(&out),
            ),
        ),
        (
            // With the sink's default retries: an expired certificate is
            // not worth retrying, so it must stop at once all the same.
            "postgres sink",
            pipeline(
                &sub("sink"),
                "    type: datagen\n    kind: people\n    count: 3",
                &pg_sink(&url("localhost", &db, true), &verify).replace("    max_retries: 0\n", ""),
            ),
        ),
    ];
    for (what, p) in &cases {
        let t0 = Instant::now();
        let err = failure(p);
        assert!(
            err.contains("has expired") && err.contains("Fix: renew the server's certificate"),
            "{what}: {err}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{what}: took {:?}, so it was retried: {err}",
            t0.elapsed()
        );
        assert!(
            !err.contains(PASSWORD),
            "{what}: the password leaked: {err}"
        );
    }
}
