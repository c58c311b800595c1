//! The embedded Schema Registry answers whoever can reach its port. Any bytes
//! sent as a request must get a well-formed answer that is not a server error,
//! and the registry must still answer the next client.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluice::format::registry::server::Registry;

fn registry() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir for the registry");
        let registry = Registry::bind("127.0.0.1:0", dir.path()).expect("the registry binds");
        // The registry keeps its state in the directory for the whole run.
        std::mem::forget(dir);
        registry.spawn(2)
    })
}

fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("the registry accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    // The registry may answer and close before reading everything.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fn status(answer: &[u8]) -> Option<u16> {
    let line = answer.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()
}

fuzz_target!(|data: &[u8]| {
    let addr = registry();
    let answer = exchange(addr, data);
    if !answer.is_empty() {
        match status(&answer) {
            Some(code) => assert!(
                (200..500).contains(&code),
                "status {code} for {:?}",
                String::from_utf8_lossy(data)
            ),
            None => panic!(
                "malformed answer {:?} to {:?}",
                String::from_utf8_lossy(&answer),
                String::from_utf8_lossy(data)
            ),
        }
    }
    let health = exchange(addr, b"GET /subjects HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        status(&health),
        Some(200),
        "the registry stopped answering after {:?}",
        String::from_utf8_lossy(data)
    );
});
