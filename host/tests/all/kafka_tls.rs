//! The `kafka` source and sink over TLS and SASL, against the secured
//! listeners of the test broker (`scripts/services/kafka.sh` with
//! `SLUICE_KAFKA_TLS_DIR` set): SSL and SASL_SSL on `localhost` (the only
//! name in the broker's certificate), SASL_PLAINTEXT, with PLAIN and
//! SCRAM-SHA-256/512 user `sluice`. Topics are made and read back over the
//! plaintext listener. A second, unrelated CA is made at test time with the
//! openssl command.

use super::*;
use crate::server_cert::other_ca;

const USER: &str = "sluice";
const PASSWORD: &str = "sluice-kafka-secret";

fn tls_dir() -> PathBuf {
    match std::env::var_os("SLUICE_KAFKA_TLS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => panic!(
            "SLUICE_KAFKA_TLS_DIR is not set: start Kafka with its secured listeners, e.g. \
             `export SLUICE_KAFKA_TLS_DIR=/tmp/sluice-services/kafka-tls; export \"$(scripts/services/kafka.sh start)\"` \
             (scripts/test.sh does)"
        ),
    }
}

fn ca() -> PathBuf {
    tls_dir().join("ca.crt")
}

/// The address of a secured listener (`SSL`, `SASL_SSL`, `SASL_PLAINTEXT`),
/// from the `listeners.env` the script writes.
fn listener(name: &str) -> String {
    let file = tls_dir().join("listeners.env");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (was kafka.sh started with SLUICE_KAFKA_TLS_DIR?)",
            file.display()
        )
    });
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {}", file.display()))
        .to_string()
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().expect("port")
}

/// A CA nobody used to sign the broker's certificate.
fn tls_block(mode: &str, ca: &Path) -> String {
    format!("    tls:\n      mode: {mode}\n      ca_file: {}\n", q(ca))
}

fn sasl_block(mechanism: &str, password: &str) -> String {
    format!("    sasl:\n      mechanism: {mechanism}\n      username: {USER}\n      password: {password}\n")
}

fn sink(name: &str, brokers: &str, topic: &str, security: &str) -> String {
    format!("  {name}:\n    type: kafka\n    brokers: {brokers}\n    topic: {topic}\n    inputs: [in, in2]\n{security}")
}

/// A `sluice run` at debug level with stdout and stderr in one file.
fn start_debug(p: &Path, log: &Path) -> Run {
    let file = std::fs::File::create(log).expect("log file");
    Run(sluice()
        .arg("run")
        .arg(p)
        .arg("--no-progress")
        .env("RUST_LOG", "debug")
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("spawn sluice"))
}

#[test]
fn kafka_over_ssl_sasl_ssl_and_sasl_plaintext_with_every_mechanism_and_no_password_in_the_logs() {
    let plain = brokers();
    let (ssl, sasl_ssl, sasl_plain) = (
        listener("SSL"),
        listener("SASL_SSL"),
        listener("SASL_PLAINTEXT"),
    );
    let input = unique("tls-in");
    let input2 = unique("tls-in2");
    let outs: Vec<String> = ["ssl", "s256", "s512", "plain", "sp"]
        .iter()
        .map(|s| unique(&format!("tls-out-{s}")))
        .collect();
    let mut topics: Vec<(&str, i32)> = vec![(&input, 2), (&input2, 1)];
    topics.extend(outs.iter().map(|t| (t.as_str(), 1)));
    create_topics(&plain, &topics);
    produce(&plain, &input, &json_records(20, 0));
    produce(&plain, &input2, &json_records(5, 100));
    let dir = tempfile::tempdir().expect("tmp");
    let pw_file = dir.path().join("kafka-password");
    std::fs::write(&pw_file, format!("{PASSWORD}\n")).expect("password file");
    let ca = ca();
    // Sources: SSL verify-full, and SASL_PLAINTEXT with PLAIN from a file.
    let source = format!(
        "    type: kafka\n    brokers: {ssl}\n    topics: [{input}]\n    group_id: {}\n    start: earliest\n    session_timeout_ms: 6000\n{}",
        unique("tls-g"),
        tls_block("verify-full", &ca)
    );
    let source2 = format!(
        "    type: kafka\n    brokers: {sasl_plain}\n    topics: [{input2}]\n    group_id: {}\n    start: earliest\n    session_timeout_ms: 6000\n    sasl:\n      mechanism: PLAIN\n      username: {USER}\n      password_file: kafka-password\n",
        unique("tls-g2"),
    );
    let sinks = [
        sink("ssl", &ssl, &outs[0], &tls_block("verify-full", &ca)),
        sink(
            "s256",
            &sasl_ssl,
            &outs[1],
            &format!("{}{}", tls_block("verify-full", &ca), sasl_block("SCRAM-SHA-256", PASSWORD)),
        ),
        sink(
            "s512",
            &sasl_ssl,
            &outs[2],
            // librdkafka's own spelling in `properties`, agreeing with the blocks.
            &format!(
                "{}    sasl:\n      mechanism: SCRAM-SHA-512\n      username: {USER}\n      password_file: kafka-password\n    properties:\n      security.protocol: SASL_SSL\n      sasl.mechanism: SCRAM-SHA-512\n",
                tls_block("verify-ca", &ca)
            ),
        ),
        sink(
            "plain",
            &sasl_ssl,
            &outs[3],
            &format!("{}{}", tls_block("verify-full", &ca), sasl_block("PLAIN", PASSWORD)),
        ),
        sink("sp", &sasl_plain, &outs[4], &sasl_block("SCRAM-SHA-512", PASSWORD)),
    ]
    .join("\n");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: kafka-tls\ncheckpoint_interval_ms: 200\nsources:\n  in:\n{source}\n  in2:\n{source2}\nsinks:\n{sinks}"
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut child = start_debug(&p, &log);
    for topic in &outs {
        let got = Reader::new(&plain, topic).read(25, 90);
        let mut ns: Vec<u64> = got.iter().filter_map(|g| g.json()["n"].as_u64()).collect();
        ns.sort_unstable();
        ns.dedup();
        let expected: Vec<u64> = (0..20).chain(100..105).collect();
        assert_eq!(ns, expected, "topic {topic}");
        alive(&mut child, &log);
    }
    terminate(child, &log);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("kafka: subscribed"),
        "the run logged at debug level:\n{text}"
    );
    assert!(
        !text.contains(PASSWORD),
        "the SASL password is in the output:\n{text}"
    );
}

/// Runs a pipeline that must fail at start; its output and how long it took.
fn fails_fast(dir: &Path, name: &str, source: &str, sink: &str) -> String {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).expect("mkdir");
    let p = write_pipeline(
        &sub,
        &format!("name: {name}\nsources:\n  in:\n{source}\nsinks:\n  out:\n{sink}"),
    );
    let t0 = Instant::now();
    let out = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .env("RUST_LOG", "debug")
        .output()
        .expect("sluice runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{name}: expected a failure:\n{text}");
    // connect_timeout_ms is 60 s: stopping well before means the refusal
    // was recognised, not waited out.
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "{name}: took {:?}:\n{text}",
        t0.elapsed()
    );
    text
}

fn kafka_source(brokers: &str, security: &str) -> String {
    format!(
        "    type: kafka\n    brokers: {brokers}\n    topics: [{}]\n    group_id: g\n    connect_timeout_ms: 60000\n{security}",
        unique("refused")
    )
}

fn kafka_sink(brokers: &str, security: &str) -> String {
    format!(
        "    type: kafka\n    brokers: {brokers}\n    topic: {}\n    inputs: [in]\n    connect_timeout_ms: 60000\n{security}",
        unique("refused")
    )
}

const DATAGEN: &str = "    type: datagen\n    kind: orders\n    count: 1\n";

#[test]
fn kafka_refusals_stop_the_run_at_start_with_the_cause_and_the_fix() {
    let dir = tempfile::tempdir().expect("tmp");
    let (ssl, sasl_ssl, sasl_plain) = (
        listener("SSL"),
        listener("SASL_SSL"),
        listener("SASL_PLAINTEXT"),
    );
    let good = ca();
    let other = other_ca(dir.path());
    let stdout_sink = "    type: stdout\n    inputs: [in]\n";

    // A CA that did not sign the broker's certificate (the source).
    let e = fails_fast(
        dir.path(),
        "wrong-ca",
        &kafka_source(&ssl, &tls_block("verify-full", &other)),
        stdout_sink,
    );
    assert!(
        e.contains(&format!(
            "the TLS certificate of the Kafka broker at {ssl} is not signed by a trusted CA"
        )) && e.contains("Fix: set `tls.ca_file`"),
        "{e}"
    );

    // The right CA, but the broker listed by an address its certificate
    // does not name (the sink).
    let by_ip = format!("127.0.0.1:{}", port_of(&ssl));
    let e = fails_fast(
        dir.path(),
        "wrong-host",
        DATAGEN,
        &kafka_sink(&by_ip, &tls_block("verify-full", &good)),
    );
    assert!(
        e.contains("is not valid for the host name `127.0.0.1`")
            && e.contains("Fix: list the brokers by a name their certificates hold"),
        "{e}"
    );

    // verify-ca checks the chain only: the same address is accepted, so
    // the run gets as far as writing (and stops with the datagen source).
    let sub = dir.path().join("verify-ca");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let p = write_pipeline(
        &sub,
        &format!(
            "name: vca\nsources:\n  in:\n{DATAGEN}\nsinks:\n  out:\n{}",
            kafka_sink(&by_ip, &tls_block("verify-ca", &good))
        ),
    );
    let out = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Wrong SASL passwords, SCRAM over TLS and PLAIN without.
    let wrong = "not-the-password-42";
    for (name, brokers, security, mechanism) in [
        (
            "bad-scram",
            &sasl_ssl,
            format!(
                "{}{}",
                tls_block("verify-full", &good),
                sasl_block("SCRAM-SHA-512", wrong)
            ),
            "SCRAM-SHA-512",
        ),
        (
            "bad-plain",
            &sasl_plain,
            sasl_block("PLAIN", wrong),
            "PLAIN",
        ),
    ] {
        let e = fails_fast(
            dir.path(),
            name,
            &kafka_source(brokers, &security),
            stdout_sink,
        );
        assert!(
            e.contains(&format!(
                "refused the SASL login of user `{USER}` with {mechanism}"
            )) && e.contains("Fix: check `sasl.username` and the password"),
            "{name}: {e}"
        );
        assert!(
            !e.contains(wrong),
            "{name}: the password is in the output:\n{e}"
        );
    }

    // Plaintext against the TLS-only listener.
    let e = fails_fast(
        dir.path(),
        "plaintext-on-ssl",
        &kafka_source(&ssl, ""),
        stdout_sink,
    );
    assert!(
        e.contains(&format!(
            "the Kafka broker at {ssl} expects TLS on this port"
        )) && e.contains("Fix: add `tls:"),
        "{e}"
    );

    // TLS against the plaintext listener.
    let e = fails_fast(
        dir.path(),
        "ssl-on-plaintext",
        DATAGEN,
        &kafka_sink(&brokers(), &tls_block("verify-full", &good)),
    );
    assert!(e.contains("does not speak TLS on this port"), "{e}");
}

#[test]
fn kafka_tls_and_sasl_mistakes_fail_validation_with_the_field() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        ("    tls:\n      mode: prefer\n", "sources.in.tls.mode", "cannot fall back"),
        (
            "    tls:\n      mode: verify-full\n      ca_file: missing-ca.pem\n",
            "sources.in.tls.ca_file",
            "cannot read",
        ),
        (
            "    tls:\n      mode: verify-full\n      server_name: kafka.internal\n",
            "sources.in.tls.server_name",
            "advertises",
        ),
        (
            "    tls: {mode: verify-full}\n    properties:\n      security.protocol: PLAINTEXT\n",
            "sources.in.properties.security.protocol",
            "contradicts",
        ),
        (
            "    sasl: {mechanism: PLAIN, username: u, password: pw-in-yaml}\n    properties:\n      sasl.password: other-pw-in-properties\n",
            "sources.in.properties.sasl.password",
            "contradicts `sasl.password`",
        ),
        (
            "    sasl: {mechanism: SCRAM-SHA-256, username: u}\n",
            "sources.in.sasl.password",
            "password_file",
        ),
    ];
    for (security, field, words) in cases {
        let p = write_pipeline(
            dir.path(),
            &format!(
                "name: bad\nsources:\n  in:\n    type: kafka\n    brokers: localhost:1\n    topics: [t]\n    group_id: g\n{security}sinks:\n  out: {{type: stdout, inputs: [in]}}\n"
            ),
        );
        let e = run_failing(sluice().arg("validate").arg(&p));
        assert!(e.contains(field) && e.contains(words), "{field}: {e}");
        assert!(
            !e.contains("pw-in-yaml") && !e.contains("other-pw-in-properties"),
            "a password in the message: {e}"
        );
    }
}

#[test]
fn kafka_client_certificates_get_in_and_their_absence_is_explained() {
    let dir = tempfile::tempdir().expect("tmp");
    let mtls = listener("MTLS");
    let (cert, key) = (tls_dir().join("client.crt"), tls_dir().join("client.key"));
    let topic = unique("mtls-out");
    create_topics(&brokers(), &[(&topic, 1)]);
    let with_cert = format!(
        "{}      cert_file: {}\n      key_file: {}\n",
        tls_block("verify-full", &ca()),
        q(&cert),
        q(&key)
    );
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: mtls\nsources:\n  in:\n    type: datagen\n    kind: orders\n    count: 3\nsinks:\n  out:\n    type: kafka\n    brokers: {mtls}\n    topic: {topic}\n    inputs: [in]\n{with_cert}"
        ),
    );
    let out = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(Reader::new(&brokers(), &topic).read(3, 30).len(), 3);

    // The same listener without one: the broker's alert, as cause and fix.
    let e = fails_fast(
        dir.path(),
        "no-client-cert",
        DATAGEN,
        &kafka_sink(&mtls, &tls_block("verify-full", &ca())),
    );
    assert!(
        e.contains(&format!(
            "the Kafka broker at {mtls} refused the TLS handshake; it wants a client certificate"
        )) && e.contains("Fix: set `tls.cert_file` and `tls.key_file`"),
        "{e}"
    );
}

/// The broker's client key, encrypted the way a key store exports one
/// (PKCS#8, PBES2 with AES-256-CBC), under `password`.
fn encrypted_client_key(dir: &Path, password: &str) -> PathBuf {
    let key = dir.join("client-encrypted.key");
    let out = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(tls_dir().join("client.key"))
        .arg("-out")
        .arg(&key)
        .args(["-passout", &format!("pass:{password}")])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(&key).expect("key");
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    key
}

#[test]
fn kafka_sasl_ssl_source_and_encrypted_client_keys_for_source_and_sink() {
    const KEY_PASSWORD: &str = "client-key-secret-31";
    let dir = tempfile::tempdir().expect("tmp");
    let plain = brokers();
    let (sasl_ssl, mtls) = (listener("SASL_SSL"), listener("MTLS"));
    let (input, input2, output) = (
        unique("sasl-ssl-in"),
        unique("enc-key-in"),
        unique("enc-key-out"),
    );
    create_topics(&plain, &[(&input, 1), (&input2, 1), (&output, 1)]);
    produce(&plain, &input, &json_records(10, 0));
    produce(&plain, &input2, &json_records(5, 100));
    let key = encrypted_client_key(dir.path(), KEY_PASSWORD);
    std::fs::write(dir.path().join("key-password"), format!("{KEY_PASSWORD}\n")).expect("write");
    // One source logs in with SCRAM-SHA-256 over verify-full TLS; another
    // source and the sink get into the listener that requires a client
    // certificate with a key only librdkafka can decrypt (`ssl.key.password`).
    let source = format!(
        "    type: kafka\n    brokers: {sasl_ssl}\n    topics: [{input}]\n    group_id: {}\n    start: earliest\n    session_timeout_ms: 6000\n{}{}",
        unique("sasl-ssl-g"),
        tls_block("verify-full", &ca()),
        sasl_block("SCRAM-SHA-256", PASSWORD)
    );
    let with_key = format!(
        "{}      cert_file: {}\n      key_file: {}\n      key_password_file: key-password\n",
        tls_block("verify-full", &ca()),
        q(&tls_dir().join("client.crt")),
        q(&key)
    );
    let source2 = format!(
        "    type: kafka\n    brokers: {mtls}\n    topics: [{input2}]\n    group_id: {}\n    start: earliest\n    session_timeout_ms: 6000\n{with_key}",
        unique("enc-key-g"),
    );
    let sink = format!(
        "    type: kafka\n    brokers: {mtls}\n    topic: {output}\n    inputs: [in]\n{with_key}"
    );
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: sasl-ssl-src\ncheckpoint_interval_ms: 200\nsources:\n  in:\n{source}\n  in2:\n{source2}\nsinks:\n  out:\n{}",
            sink.replace("[in]", "[in, in2]")
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut child = start_debug(&p, &log);
    let got = Reader::new(&plain, &output).read(15, 60);
    alive(&mut child, &log);
    terminate(child, &log);
    let mut ns: Vec<u64> = got.iter().filter_map(|g| g.json()["n"].as_u64()).collect();
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(ns, (0..10).chain(100..105).collect::<Vec<u64>>());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("DEBUG"),
        "the run logged at debug level:\n{text}"
    );
    for secret in [PASSWORD, KEY_PASSWORD] {
        assert!(!text.contains(secret), "a secret is in the output:\n{text}");
    }

    // The wrong password for the key: refused at start, saying which field.
    std::fs::write(
        dir.path().join("bad-key-password"),
        "not-the-key-password\n",
    )
    .expect("write");
    let sink = sink.replace(
        "key_password_file: key-password",
        "key_password_file: ../bad-key-password",
    );
    let e = fails_fast(dir.path(), "wrong-key-password", DATAGEN, &sink);
    assert!(e.contains("tls.key_password"), "{e}");
    assert!(
        !e.contains("not-the-key-password"),
        "the password is in the output:\n{e}"
    );
}

#[test]
fn kafka_expired_broker_certificate_stops_source_and_sink_with_the_fix() {
    let dir = tempfile::tempdir().expect("tmp");
    // The EXPIRED listener presents a certificate for `localhost` signed by
    // the test CA that was valid in January 2020 only.
    let expired = listener("EXPIRED");
    let stdout_sink = "    type: stdout\n    inputs: [in]\n";
    for (name, source, sink) in [
        (
            "expired-source",
            kafka_source(&expired, &tls_block("verify-full", &ca())),
            stdout_sink.to_string(),
        ),
        (
            "expired-sink",
            DATAGEN.to_string(),
            kafka_sink(&expired, &tls_block("verify-full", &ca())),
        ),
    ] {
        // fails_fast: well under connect_timeout_ms (60 s), so not retried.
        let e = fails_fast(dir.path(), name, &source, &sink);
        assert!(
            e.contains(&format!(
                "the TLS certificate of the Kafka broker at {expired} has expired"
            )) && e.contains("Fix: renew the broker's certificate"),
            "{name}: {e}"
        );
    }
}
