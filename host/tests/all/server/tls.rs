//! HTTPS on `sluice serve`'s listener, with a certificate of a CA the test
//! makes with openssl, and the remote CLI trusting that CA through
//! `SLUICE_SERVER_CA`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use super::{write_config, Server, ADMIN};
use crate::support::sluice;

/// A CA and a certificate it signed for 127.0.0.1 and localhost, in `dir`.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=sluice serve test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("san.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
}

fn agent(ca: Option<&Path>) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).expect("ca.crt");
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(tls.build())
        .build()
        .new_agent()
}

#[test]
fn the_server_speaks_https_and_the_cli_trusts_the_ca_it_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certs(dir.path());
    write_config(
        dir.path(),
        "tls_cert_file = \"server.crt\"\ntls_key_file = \"server.key\"\n",
    );
    let s = Server::start(dir.path());
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let ca = dir.path().join("ca.crt");

    // The operator makes a tenant over HTTPS.
    let https = agent(Some(&ca));
    let created = https
        .post(&format!("{}/v1/tenants", s.url))
        .header("Authorization", &format!("Bearer {ADMIN}"))
        .send(json!({"name": "acme"}).to_string().as_bytes());
    assert_eq!(created.expect("HTTPS").status().as_u16(), 201);
    let mut issued = https
        .post(&format!("{}/v1/tenants/acme/tokens", s.url))
        .header("Authorization", &format!("Bearer {ADMIN}"))
        .send(json!({"scope": "read"}).to_string().as_bytes())
        .expect("token");
    let v: Value =
        serde_json::from_str(&issued.body_mut().read_to_string().expect("body")).expect("JSON");
    let token = v["token"].as_str().expect("token").to_string();

    // The CLI, told the CA, lists the (empty) pipelines.
    let ps = |ca: Option<&Path>| {
        let mut c = sluice();
        c.args(["--server", &s.url, "ps"])
            .env("SLUICE_TOKEN", &token);
        match ca {
            Some(ca) => c.env("SLUICE_SERVER_CA", ca),
            None => c.env_remove("SLUICE_SERVER_CA"),
        };
        c.output().expect("sluice ps")
    };
    let ok = ps(Some(&ca));
    assert!(ok.status.success(), "{ok:?}");
    // Not told, it does not trust the server's certificate.
    let refused = ps(None);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // A CA file that holds no certificate is named.
    std::fs::write(dir.path().join("empty.pem"), "").expect("empty");
    let empty = ps(Some(&dir.path().join("empty.pem")));
    assert!(!empty.status.success());
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains("holds no certificate"),
        "{empty:?}"
    );
    // Plain HTTP on the TLS port gets no answer a client could read.
    let plain = s.url.replacen("https://", "http://", 1);
    assert!(agent(None)
        .get(&format!("{plain}/v1/pipelines"))
        .call()
        .is_err());
    s.terminate();
}

#[test]
fn a_certificate_without_its_key_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certs(dir.path());
    write_config(dir.path(), "tls_cert_file = \"server.crt\"\n");
    let out = sluice()
        .args(["serve", "--config"])
        .arg(dir.path().join("server.toml"))
        .env("SLUICE_ADMIN_TOKEN", ADMIN)
        .output()
        .expect("sluice serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls_cert_file and tls_key_file go together: give both for HTTPS, or neither"),
        "{err}"
    );
    // A key that is not the certificate's is named too.
    std::fs::write(dir.path().join("other.key"), "not a key").expect("key");
    write_config(
        dir.path(),
        "tls_cert_file = \"server.crt\"\ntls_key_file = \"other.key\"\n",
    );
    let out = sluice()
        .args(["serve", "--config"])
        .arg(dir.path().join("server.toml"))
        .env("SLUICE_ADMIN_TOKEN", ADMIN)
        .output()
        .expect("sluice serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("other.key"), "{err}");
}
