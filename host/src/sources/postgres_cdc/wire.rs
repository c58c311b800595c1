//! A blocking client for PostgreSQL's streaming replication protocol: a
//! `replication=database` connection that runs replication commands
//! (`CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT`, `START_REPLICATION`) and
//! then exchanges CopyData messages with the walsender.
//!
//! General-purpose clients (tokio-postgres) cannot open such a connection or
//! keep an exported snapshot alive while another session imports it, so this
//! speaks the protocol directly. It runs on the source's own thread; reads
//! take a timeout so `poll` never blocks for long.
//!
//! TLS is negotiated as libpq does: an SSLRequest, then (on `S`) a rustls
//! handshake over the same socket with the configuration shared by the other
//! PostgreSQL connectors; SCRAM binds to the TLS channel
//! (`SCRAM-SHA-256-PLUS`, tls-server-end-point) when the server offers it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use postgres_protocol::authentication::sasl::{
    ChannelBinding, ScramSha256, SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};
use postgres_protocol::message::frontend;
use rustls::{ClientConnection, StreamOwned};

use crate::clients::tls::{Tls, TlsMode};

/// An error the server reported, with its SQLSTATE.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}{}", detail_hint(.detail, .hint))]
pub struct ServerError {
    /// SQLSTATE code, e.g. `28P01`.
    pub code: String,
    /// Primary message.
    pub message: String,
    /// Optional detail.
    pub detail: Option<String>,
    /// Optional hint.
    pub hint: Option<String>,
}

fn detail_hint(detail: &Option<String>, hint: &Option<String>) -> String {
    let mut s = String::new();
    if let Some(d) = detail {
        s.push_str(&format!(" ({d})"));
    }
    if let Some(h) = hint {
        s.push_str(&format!("; hint: {h}"));
    }
    s
}

/// What can go wrong on the replication connection.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or closed.
    #[error("replication connection: {0}")]
    Io(#[from] io::Error),
    /// The server refused something.
    #[error("{0}")]
    Server(ServerError),
    /// The server sent something this client does not understand.
    #[error("replication protocol: {0}")]
    Protocol(String),
    /// The TLS handshake failed (certificate, name, alert).
    #[error("TLS: {0}")]
    Tls(rustls::Error),
    /// TLS is required and the server answered the SSLRequest with `N`.
    #[error("the server does not support TLS")]
    NoTls,
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Role.
    pub user: String,
    /// Password, if any.
    pub password: Option<Vec<u8>>,
    /// Database.
    pub dbname: String,
    /// Reported in `pg_stat_replication`.
    pub application_name: String,
    /// TLS, unless disabled.
    pub tls: Option<Tls>,
}

/// The socket, encrypted or not.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// An I/O error from rustls' stream, with the TLS error inside it taken out.
fn tls_io(e: io::Error) -> WireError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(t) => WireError::Tls(t.clone()),
        None => WireError::Io(e),
    }
}

/// Asks for TLS (SSLRequest) and does the handshake. `Ok(Plain)` when the
/// server declines and `prefer` allows plaintext.
fn negotiate_tls(
    mut tcp: TcpStream,
    tls: &Tls,
    host: &str,
    timeout: Duration,
) -> Result<(Stream, Option<Vec<u8>>), WireError> {
    let mut out = bytes_mut();
    frontend::ssl_request(&mut out);
    tcp.write_all(&out)?;
    tcp.set_read_timeout(Some(timeout))?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer)?;
    match answer[0] {
        b'S' => {}
        b'N' if tls.mode == TlsMode::Prefer => return Ok((Stream::Plain(tcp), None)),
        b'N' => return Err(WireError::NoTls),
        other => {
            return Err(WireError::Protocol(format!(
                "unexpected answer `{}` to the SSLRequest",
                other as char
            )))
        }
    }
    let name = tls.name_for(host).map_err(WireError::Protocol)?;
    let mut conn = ClientConnection::new(tls.config.clone(), name).map_err(WireError::Tls)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(tls_io)?;
    }
    let binding = server_end_point(&conn);
    Ok((Stream::Tls(Box::new(StreamOwned::new(conn, tcp))), binding))
}

/// The tls-server-end-point channel binding data (RFC 5929): a hash of the
/// server's certificate with its signature's hash (SHA-1 upgraded to
/// SHA-256). `None` for algorithms without one (Ed25519).
fn server_end_point(conn: &ClientConnection) -> Option<Vec<u8>> {
    use sha2::Digest;
    use x509_cert::der::oid::db::rfc5912::{
        ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_SHA_1, ID_SHA_256,
        ID_SHA_384, ID_SHA_512, SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION,
        SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
    };
    use x509_cert::der::Decode;
    let der = conn.peer_certificates()?.first()?;
    let cert = x509_cert::Certificate::from_der(der.as_ref()).ok()?;
    match cert.signature_algorithm.oid {
        ID_SHA_1
        | ID_SHA_256
        | SHA_1_WITH_RSA_ENCRYPTION
        | SHA_256_WITH_RSA_ENCRYPTION
        | ECDSA_WITH_SHA_256 => Some(sha2::Sha256::digest(der.as_ref()).to_vec()),
        ID_SHA_384 | SHA_384_WITH_RSA_ENCRYPTION | ECDSA_WITH_SHA_384 => {
            Some(sha2::Sha384::digest(der.as_ref()).to_vec())
        }
        ID_SHA_512 | SHA_512_WITH_RSA_ENCRYPTION | ECDSA_WITH_SHA_512 => {
            Some(sha2::Sha512::digest(der.as_ref()).to_vec())
        }
        _ => None,
    }
}

/// One message from the server: its tag and body.
#[derive(Debug)]
pub struct Frame {
    /// Message type byte.
    pub tag: u8,
    /// Body without the tag and length.
    pub body: Vec<u8>,
}

/// A replication connection.
pub struct ReplicationConnection {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    /// tls-server-end-point data when on TLS.
    binding: Option<Vec<u8>>,
    /// Whether SCRAM was bound to the TLS channel.
    pub channel_bound: bool,
}

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// Now, in PostgreSQL's epoch.
pub fn pg_now_us() -> i64 {
    let unix_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    unix_us - PG_EPOCH_OFFSET_US
}

impl ReplicationConnection {
    /// Connects, authenticates (trust, password, MD5 or SCRAM-SHA-256) and
    /// waits until the server is ready for commands.
    pub fn connect(params: &ConnectParams, timeout: Duration) -> Result<Self, WireError> {
        let addr = format!("{}:{}", params.host, params.port);
        let mut last = None;
        let mut stream = None;
        for a in std::net::ToSocketAddrs::to_socket_addrs(&addr)? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = stream.ok_or_else(|| {
            last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
        })?;
        stream.set_nodelay(true)?;
        let (stream, binding) = match &params.tls {
            Some(tls) => negotiate_tls(stream, tls, &params.host, timeout)?,
            None => (Stream::Plain(stream), None),
        };
        let mut conn = Self {
            stream,
            buf: Vec::with_capacity(1 << 16),
            start: 0,
            binding,
            channel_bound: false,
        };
        let mut out = bytes_mut();
        let startup = [
            ("user", params.user.as_str()),
            ("database", params.dbname.as_str()),
            ("replication", "database"),
            ("application_name", params.application_name.as_str()),
            ("client_encoding", "UTF8"),
            // Values are decoded in text form: fix the formats they use.
            ("DateStyle", "ISO"),
            ("TimeZone", "UTC"),
            ("extra_float_digits", "3"),
        ];
        frontend::startup_message(startup.iter().copied(), &mut out)?;
        conn.send(&out)?;
        conn.authenticate(params, timeout)?;
        // Parameter status and key data until ready.
        loop {
            let f = conn.expect_frame(timeout)?;
            match f.tag {
                b'Z' => return Ok(conn),
                b'E' => return Err(WireError::Server(parse_error(&f.body))),
                _ => {}
            }
        }
    }

    fn authenticate(&mut self, params: &ConnectParams, timeout: Duration) -> Result<(), WireError> {
        let missing_password = || {
            WireError::Server(ServerError {
                code: "28P01".into(),
                message: format!(
                    "the server asks for a password for user \"{}\" and the url has none",
                    params.user
                ),
                detail: None,
                hint: None,
            })
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let f = self.expect_frame(timeout)?;
            if f.tag == b'E' {
                return Err(WireError::Server(parse_error(&f.body)));
            }
            if f.tag != b'R' {
                return Err(WireError::Protocol(format!(
                    "expected an authentication request, got message `{}`",
                    f.tag as char
                )));
            }
            let kind = be_i32(&f.body, 0)?;
            let data = f.body.get(4..).unwrap_or_default();
            let mut out = bytes_mut();
            match kind {
                0 => return Ok(()),
                3 => {
                    let pw = params.password.as_ref().ok_or_else(missing_password)?;
                    frontend::password_message(pw, &mut out)?;
                }
                5 => {
                    let pw = params.password.as_ref().ok_or_else(missing_password)?;
                    let salt: [u8; 4] = data
                        .get(..4)
                        .and_then(|s| s.try_into().ok())
                        .ok_or_else(|| WireError::Protocol("short MD5 salt".into()))?;
                    let hash = postgres_protocol::authentication::md5_hash(
                        params.user.as_bytes(),
                        pw,
                        salt,
                    );
                    frontend::password_message(hash.as_bytes(), &mut out)?;
                }
                10 => {
                    let offered: Vec<&[u8]> = data.split(|b| *b == 0).collect();
                    let plus = offered.contains(&SCRAM_SHA_256_PLUS.as_bytes());
                    if !plus && !offered.contains(&SCRAM_SHA_256.as_bytes()) {
                        return Err(WireError::Protocol(
                            "the server offers no SASL mechanism this client supports (SCRAM-SHA-256)"
                                .into(),
                        ));
                    }
                    let pw = params.password.as_ref().ok_or_else(missing_password)?;
                    // As libpq: bind when both sides can; say "y" (could
                    // bind, not offered) on TLS so a downgrade is detected.
                    let (mechanism, binding) = match (&self.binding, plus) {
                        (Some(cb), true) => (
                            SCRAM_SHA_256_PLUS,
                            ChannelBinding::tls_server_end_point(cb.clone()),
                        ),
                        (Some(_), false) => (SCRAM_SHA_256, ChannelBinding::unrequested()),
                        (None, _) => (SCRAM_SHA_256, ChannelBinding::unsupported()),
                    };
                    self.channel_bound = mechanism == SCRAM_SHA_256_PLUS;
                    let s = ScramSha256::new(pw, binding);
                    frontend::sasl_initial_response(mechanism, s.message(), &mut out)?;
                    scram = Some(s);
                }
                11 => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| WireError::Protocol("unexpected SASL continue".into()))?;
                    s.update(data)?;
                    frontend::sasl_response(s.message(), &mut out)?;
                }
                12 => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| WireError::Protocol("unexpected SASL final".into()))?;
                    s.finish(data)?;
                    continue;
                }
                other => {
                    return Err(WireError::Protocol(format!(
                        "unsupported authentication method {other} (supported: trust, password, md5, scram-sha-256)"
                    )))
                }
            }
            self.send(&out)?;
        }
    }

    /// Runs a replication command and returns its result rows (text columns).
    pub fn simple_query(
        &mut self,
        sql: &str,
        timeout: Duration,
    ) -> Result<Vec<Vec<Option<String>>>, WireError> {
        let mut out = bytes_mut();
        frontend::query(sql, &mut out)?;
        self.send(&out)?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let f = self.expect_frame(timeout)?;
            match f.tag {
                b'D' => rows.push(parse_data_row(&f.body)?),
                b'E' => error = Some(parse_error(&f.body)),
                b'Z' => break,
                _ => {}
            }
        }
        match error {
            Some(e) => Err(WireError::Server(e)),
            None => Ok(rows),
        }
    }

    /// Sends `START_REPLICATION` and waits for the copy-both response.
    pub fn start_replication(&mut self, sql: &str, timeout: Duration) -> Result<(), WireError> {
        let mut out = bytes_mut();
        frontend::query(sql, &mut out)?;
        self.send(&out)?;
        loop {
            let f = self.expect_frame(timeout)?;
            match f.tag {
                b'W' => return Ok(()),
                b'E' => {
                    let e = parse_error(&f.body);
                    // Drain to ReadyForQuery so the error is the whole story.
                    return Err(WireError::Server(e));
                }
                b'N' | b'S' => {}
                other => {
                    return Err(WireError::Protocol(format!(
                        "expected copy-both after START_REPLICATION, got `{}`",
                        other as char
                    )))
                }
            }
        }
    }

    /// Sends a standby status update: everything up to `flush` is durable
    /// downstream, so the server may discard WAL before it.
    pub fn send_status(&mut self, flush: u64, reply: bool) -> Result<(), WireError> {
        let mut body = Vec::with_capacity(34);
        body.push(b'r');
        for v in [flush, flush, flush] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        body.extend_from_slice(&pg_now_us().to_be_bytes());
        body.push(u8::from(reply));
        self.send_copy_data(&body)
    }

    fn send_copy_data(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let mut msg = Vec::with_capacity(payload.len() + 5);
        msg.push(b'd');
        msg.extend_from_slice(&((payload.len() + 4) as i32).to_be_bytes());
        msg.extend_from_slice(payload);
        self.send(&msg)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.stream.write_all(bytes).map_err(tls_io)?;
        self.stream.flush().map_err(tls_io)?;
        Ok(())
    }

    /// The next message, waiting up to `timeout`; `None` if none arrived.
    pub fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame>, WireError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(f) = self.take_frame()? {
                return Ok(Some(f));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if !self.fill(left)? {
                return Ok(None);
            }
        }
    }

    fn expect_frame(&mut self, timeout: Duration) -> Result<Frame, WireError> {
        self.next_frame(timeout)?.ok_or_else(|| {
            WireError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from the server within {timeout:?}"),
            ))
        })
    }

    /// A complete frame from the buffer, if there is one.
    fn take_frame(&mut self) -> Result<Option<Frame>, WireError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 5 {
            return Ok(None);
        }
        let tag = avail[0];
        let len = be_i32(avail, 1)?;
        if len < 4 {
            return Err(WireError::Protocol(format!("bad message length {len}")));
        }
        let total = 1 + len as usize;
        if avail.len() < total {
            return Ok(None);
        }
        let body = avail[5..total].to_vec();
        self.start += total;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(Frame { tag, body }))
    }

    /// Reads what the socket has, waiting up to `timeout`. False on timeout.
    fn fill(&mut self, timeout: Duration) -> Result<bool, WireError> {
        if self.start > 0 && self.start * 2 > self.buf.capacity() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.stream
            .tcp()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(WireError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ))),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(tls_io(e)),
        }
    }
}

fn bytes_mut() -> bytes::BytesMut {
    bytes::BytesMut::with_capacity(256)
}

/// Big-endian i32 at `at`.
pub fn be_i32(b: &[u8], at: usize) -> Result<i32, WireError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(i32::from_be_bytes)
        .ok_or_else(|| WireError::Protocol("message too short".into()))
}

/// Parses an ErrorResponse / NoticeResponse body.
pub fn parse_error(body: &[u8]) -> ServerError {
    let mut e = ServerError {
        code: String::new(),
        message: String::new(),
        detail: None,
        hint: None,
    };
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        let value = String::from_utf8_lossy(&tail[..end]).into_owned();
        match kind {
            b'C' => e.code = value,
            b'M' => e.message = value,
            b'D' => e.detail = Some(value),
            b'H' => e.hint = Some(value),
            _ => {}
        }
        rest = tail.get(end + 1..).unwrap_or_default();
    }
    e
}

fn parse_data_row(body: &[u8]) -> Result<Vec<Option<String>>, WireError> {
    let n = body
        .get(..2)
        .map(|s| i16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| WireError::Protocol("short data row".into()))?;
    let mut at = 2;
    let mut cols = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let len = be_i32(body, at)?;
        at += 4;
        if len < 0 {
            cols.push(None);
            continue;
        }
        let end = at + len as usize;
        let v = body
            .get(at..end)
            .ok_or_else(|| WireError::Protocol("short data row".into()))?;
        cols.push(Some(String::from_utf8_lossy(v).into_owned()));
        at = end;
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields_are_parsed() {
        let body = b"SERROR\0C28P01\0Mpassword authentication failed\0Hcheck it\0\0";
        let e = parse_error(body);
        assert_eq!(e.code, "28P01");
        assert_eq!(
            e.to_string(),
            "password authentication failed; hint: check it"
        );
    }

    #[test]
    fn data_rows_keep_nulls() {
        let mut body = vec![0, 2];
        body.extend_from_slice(&3i32.to_be_bytes());
        body.extend_from_slice(b"abc");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            parse_data_row(&body).ok(),
            Some(vec![Some("abc".to_string()), None])
        );
    }
}
