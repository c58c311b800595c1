//! Shared by the PostgreSQL and MariaDB TLS tests: swapping the certificate a
//! running test server presents (for an expired one), knowing which one it
//! presents, making client certificates signed by the test CA, and a CA
//! that signed nothing (every TLS test's wrong-CA case).
//!
//! The services scripts make `expired.crt`/`expired.key` beside the server's
//! own certificate: the same name (`localhost`), the same CA, valid only in
//! January 2020.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A lock on the server's certificate, across processes (nextest runs each
/// test in its own): tests that verify the server's certificate hold it
/// shared, the test that swaps it in an expired one holds it exclusively.
pub fn lock(tls_dir: &Path, exclusive: bool) -> File {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(tls_dir.join(".server-cert.lock"))
        .expect("lock file");
    if exclusive {
        f.lock().expect("exclusive lock");
    } else {
        f.lock_shared().expect("shared lock");
    }
    f
}

/// The base64 body of the first PEM certificate in `pem`, whitespace removed.
fn pem_body(pem: &str) -> Option<String> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = start + pem[start..].find("-----END CERTIFICATE-----")?;
    Some(pem[start..end].split_whitespace().collect())
}

/// The certificate the server at 127.0.0.1:`port` presents, asked with
/// `openssl s_client -starttls <protocol>` (`postgres`, `mysql`).
fn served(protocol: &str, port: &str) -> Option<String> {
    let out = Command::new("timeout")
        .args([
            "10",
            "openssl",
            "s_client",
            "-starttls",
            protocol,
            "-connect",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client runs");
    pem_body(&String::from_utf8_lossy(&out.stdout))
}

/// Waits until the server presents the certificate in `cert` (a reload is
/// asynchronous: PostgreSQL's postmaster handles SIGHUP when it gets to it).
pub fn wait_served(protocol: &str, port: &str, cert: &Path) {
    let want = pem_body(&std::fs::read_to_string(cert).expect("cert")).expect("a PEM certificate");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if served(protocol, port).as_deref() == Some(want.as_str()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server at port {port} did not present {} within 20 s",
            cert.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The server's `server.crt`/`server.key` in `tls_dir` replaced by
/// `expired.crt`/`expired.key` (in place: owner and mode stay what the
/// server wants) until dropped, which puts them back, reloads and waits.
pub struct Expired<'a> {
    tls_dir: PathBuf,
    crt: Vec<u8>,
    key: Vec<u8>,
    protocol: &'a str,
    port: String,
    reload: &'a dyn Fn(),
}

impl<'a> Expired<'a> {
    /// Swaps, calls `reload`, and waits until the expired one is presented.
    pub fn swap_in(tls_dir: &Path, protocol: &'a str, port: &str, reload: &'a dyn Fn()) -> Self {
        let read = |n: &str| std::fs::read(tls_dir.join(n)).expect("read a certificate file");
        let swap = Expired {
            tls_dir: tls_dir.to_path_buf(),
            crt: read("server.crt"),
            key: read("server.key"),
            protocol,
            port: port.to_string(),
            reload,
        };
        std::fs::write(tls_dir.join("server.crt"), read("expired.crt")).expect("write");
        std::fs::write(tls_dir.join("server.key"), read("expired.key")).expect("write");
        reload();
        wait_served(protocol, port, &tls_dir.join("expired.crt"));
        swap
    }
}

impl Drop for Expired<'_> {
    fn drop(&mut self) {
        let restore = std::fs::write(self.tls_dir.join("server.crt"), &self.crt)
            .and_then(|()| std::fs::write(self.tls_dir.join("server.key"), &self.key));
        if let Err(e) = restore {
            eprintln!("could not put the server's certificate back: {e}");
            return;
        }
        (self.reload)();
        wait_served(self.protocol, &self.port, &self.tls_dir.join("server.crt"));
    }
}

/// A client certificate with subject `/CN=<cn>`, signed by the CA in
/// `tls_dir` (`ca.crt`, `ca.key`), written to `dir`: (certificate, key).
pub fn client_cert(tls_dir: &Path, cn: &str, dir: &Path) -> (PathBuf, PathBuf) {
    let (key, csr, cert, ext) = (
        dir.join(format!("{cn}.key")),
        dir.join(format!("{cn}.csr")),
        dir.join(format!("{cn}.crt")),
        dir.join(format!("{cn}.ext")),
    );
    // Extensions make it an X.509 v3 certificate (webpki refuses v1).
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .expect("write");
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("openssl")
        .args(["req", "-newkey", "rsa:2048", "-nodes", "-subj"])
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-set_serial"])
        .arg(std::process::id().to_string())
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(tls_dir.join("ca.crt"))
        .arg("-CAkey")
        .arg(tls_dir.join("ca.key"))
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

/// A CA nobody used to sign the servers' certificates (for the wrong-CA
/// cases of every TLS test), made in `dir` with the openssl command.
pub fn other_ca(dir: &Path) -> PathBuf {
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
