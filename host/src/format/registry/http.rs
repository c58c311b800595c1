//! The registry's HTTP/1.1 transport: one request per connection, read
//! within fixed bounds so a client can make the server hold neither much
//! memory nor a worker for long.
//!
//! Bounds: the request line and headers together at most
//! [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`] headers; a body only with a
//! `Content-Length`, refused (413) from the header alone when it is over the
//! limit, so the body is never read; [`REQUEST_DEADLINE`] for the whole
//! request. Every response closes the connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The request line and headers together.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Headers per request.
pub const MAX_HEADERS: usize = 64;
/// Time a client has to send a whole request.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// After refusing a request whose body is still arriving, read and discard
/// at most this much (for at most [`LINGER`]) before closing, so the client
/// sees the refusal instead of a reset.
const LINGER_BYTES: usize = 1 << 20;
const LINGER: Duration = Duration::from_secs(2);

/// A request head, before its body is read.
#[derive(Debug)]
pub struct Head {
    /// `GET`, `POST`...
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header names (lower-cased) and values.
    pub headers: Vec<(String, String)>,
    /// The peer.
    pub remote: SocketAddr,
}

impl Head {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response: status and JSON text.
pub type Response = (u16, String);

/// One connection, from head to response.
pub struct Conn {
    stream: TcpStream,
    started: Instant,
    /// Bytes read past the head (the start of the body).
    rest: Vec<u8>,
    /// The body is unread (so closing must linger).
    body_pending: bool,
}

/// Why no head could be read; the connection gets this status (if any).
#[derive(Debug)]
pub enum HeadError {
    /// The client went away or timed out: nothing to answer.
    Gone,
    /// Malformed or too large: answer and close.
    Refuse(u16, &'static str),
}

impl Conn {
    /// Wraps an accepted connection.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            started: Instant::now(),
            rest: Vec::new(),
            body_pending: false,
        }
    }

    fn arm_deadline(&self) -> std::io::Result<()> {
        let left = REQUEST_DEADLINE
            .checked_sub(self.started.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "request deadline"))?;
        self.stream.set_read_timeout(Some(left))
    }

    /// Reads the request line and headers.
    pub fn head(&mut self) -> Result<Head, HeadError> {
        let remote = self.stream.peer_addr().map_err(|_| HeadError::Gone)?;
        let mut buf = vec![0u8; MAX_HEAD_BYTES];
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                return Err(HeadError::Refuse(431, "request line and headers too large"));
            }
            self.arm_deadline().map_err(|_| HeadError::Gone)?;
            let n = match self.stream.read(&mut buf[filled..]) {
                Ok(0) | Err(_) => return Err(HeadError::Gone),
                Ok(n) => n,
            };
            filled += n;
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[..filled]) {
                Ok(httparse::Status::Partial) => continue,
                Ok(httparse::Status::Complete(len)) => {
                    let head = Head {
                        method: req.method.unwrap_or_default().to_string(),
                        target: req.path.unwrap_or_default().to_string(),
                        headers: req
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_ascii_lowercase(),
                                    String::from_utf8_lossy(h.value).into_owned(),
                                )
                            })
                            .collect(),
                        remote,
                    };
                    self.rest = buf[len..filled].to_vec();
                    self.body_pending = true;
                    return Ok(head);
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(HeadError::Refuse(431, "too many headers"))
                }
                Err(_) => return Err(HeadError::Refuse(400, "malformed HTTP request")),
            }
        }
    }

    /// The body announced by `head`, if it is at most `max` bytes.
    pub fn body(&mut self, head: &Head, max: u64) -> Result<Vec<u8>, BodyError> {
        if head.header("transfer-encoding").is_some() {
            return Err(BodyError::Refuse(
                411,
                "send the body with a Content-Length (chunked bodies are not accepted)".into(),
            ));
        }
        let len = match head.header("content-length") {
            None => 0,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| BodyError::Refuse(400, "invalid Content-Length".into()))?,
        };
        if len > max {
            return Err(BodyError::TooLarge { len, max });
        }
        let len = len as usize;
        let mut body = std::mem::take(&mut self.rest);
        body.truncate(len);
        let mut filled = body.len();
        body.resize(len, 0);
        while filled < len {
            self.arm_deadline().map_err(|_| BodyError::Gone)?;
            match self.stream.read(&mut body[filled..]) {
                Ok(0) | Err(_) => return Err(BodyError::Gone),
                Ok(n) => filled += n,
            }
        }
        self.body_pending = false;
        Ok(body)
    }

    /// Sends `response` with `extra` headers and closes the connection.
    pub fn respond(mut self, (status, body): Response, extra: &[(&str, &str)]) {
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n",
            reason(status),
            body.len()
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(10)));
        let _ = self
            .stream
            .write_all(head.as_bytes())
            .and_then(|()| self.stream.write_all(body.as_bytes()))
            .and_then(|()| self.stream.flush());
        let _ = self.stream.shutdown(Shutdown::Write);
        if self.body_pending {
            // Closing with unread data would reset the connection, and the
            // client might lose the answer; read a little, then close anyway.
            let deadline = Instant::now() + LINGER;
            let mut sink = [0u8; 16 * 1024];
            let mut drained = 0;
            while drained < LINGER_BYTES {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                    break;
                }
                match self.stream.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        }
    }
}

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit (from the `Content-Length` alone).
    TooLarge {
        /// Announced length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Refused for another reason.
    Refuse(u16, String),
    /// The client went away or timed out.
    Gone,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Entity",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "",
    }
}
