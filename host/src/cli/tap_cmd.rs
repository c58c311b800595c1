//! `sluice tap`: prints a live sample of the events leaving a source or
//! stage of a pipeline running locally with `sluice run --tap ADDR`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::config::{self, HostConfig, LoadOptions};
use crate::pipeline::tap::percent_encode;

/// What to tap.
pub struct TapArgs<'a> {
    /// The source or stage.
    pub component: &'a str,
    /// Only events whose value this expression is true for.
    pub filter: Option<&'a str>,
    /// At most this many events per second.
    pub rate: u32,
    /// Stop after this many events (0: until Ctrl-C).
    pub limit: u64,
}

/// `sluice tap FILE COMPONENT`.
pub fn run(file: &Path, args: TapArgs<'_>) -> Result<ExitCode> {
    let options = LoadOptions::for_host(
        &HostConfig::current().map_err(anyhow::Error::msg)?,
        Vec::new(),
    );
    let p = match config::load(file, &options) {
        Ok(p) => p,
        Err(diags) => {
            eprintln!("{}", diags.sorted());
            return Ok(ExitCode::FAILURE);
        }
    };
    let known = p
        .sources
        .iter()
        .map(|s| &s.name)
        .chain(p.stages.iter().map(|s| &s.name));
    if !known.clone().any(|n| n == args.component) {
        let names: Vec<&str> = known.map(String::as_str).collect();
        bail!(
            "`{}` is not a source or stage of pipeline `{}` (it has: {})",
            args.component,
            p.name,
            names.join(", ")
        );
    }
    let addr_file = p.state_dir().join("tap.addr");
    let addr = std::fs::read_to_string(&addr_file).with_context(|| {
        format!(
            "reading {}: is `sluice run --tap 127.0.0.1:0 {}` running?",
            addr_file.display(),
            file.display()
        )
    })?;
    let addr = addr.trim();
    let mut conn = TcpStream::connect(addr).with_context(|| {
        format!("connecting to the tap at {addr}: is `sluice run --tap ...` still running?")
    })?;
    let mut query = format!(
        "component={}&rate={}",
        percent_encode(args.component),
        args.rate
    );
    if let Some(f) = args.filter {
        query.push_str(&format!("&filter={}", percent_encode(f)));
    }
    write!(
        conn,
        "GET /tap?{query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(conn);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let ok = status.split_whitespace().nth(1) == Some("200");
    // Headers.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
    }
    if !ok {
        let mut body = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut body);
        bail!("the tap refused: {}", body.trim());
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut shown = 0u64;
    for line in reader.lines() {
        let line = line?;
        if line.is_empty() {
            continue; // keep-alive
        }
        writeln!(out, "{line}")?;
        out.flush()?;
        shown += 1;
        if args.limit > 0 && shown >= args.limit {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
