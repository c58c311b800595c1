//! `sluice --server URL files ls|put|get|rm`: a tenant's file area
//! (`/v1/files`), what its `file` sources read and its `file` sinks write.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::remote_cmd::Remote;

/// Files in the tenant's area on a server.
#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// List the files with their sizes, and the area's total against its quota.
    Ls,
    /// Upload a local file (replacing one of that name atomically).
    #[command(after_help = "\
Examples:
  sluice --server http://127.0.0.1:7070 files put orders.jsonl
  sluice --server http://127.0.0.1:7070 files put ./export.jsonl in/orders.jsonl
A pipeline then reads it as `sources: {o: {type: file, path: in/orders.jsonl}}`.
Names are relative paths of letters, digits, `.`, `_` and `-`. Each upload is
bounded by the tenant's max_request_bytes, the whole area by max_file_bytes.")]
    Put {
        /// The local file.
        local: PathBuf,
        /// Its name on the server; the local file's name when left out.
        name: Option<String>,
    },
    /// Download a file (a file sink's output, say) to stdout or `--output`.
    #[command(after_help = "\
Examples:
  sluice --server http://127.0.0.1:7070 files get out/enriched.jsonl | head
  sluice --server http://127.0.0.1:7070 files get out/enriched.jsonl -o enriched.jsonl")]
    Get {
        /// The file's name on the server.
        name: String,
        /// Write here instead of stdout.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Delete a file.
    Rm {
        /// The file's name on the server.
        name: String,
    },
}

/// Runs `command` against the server at `url`.
pub fn run(url: &str, command: FilesCommand) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    match command {
        FilesCommand::Ls => {
            let v = r.ok("GET", "/v1/files", None)?;
            println!("{:>14}  {:<24} PATH", "BYTES", "MODIFIED");
            for f in v["files"].as_array().into_iter().flatten() {
                let ms = f["modified_ms"].as_i64().unwrap_or(0);
                let (y, mo, d, h) = crate::format::time::utc_parts(ms);
                let mi = ms.div_euclid(60_000).rem_euclid(60);
                let when = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC");
                println!(
                    "{:>14}  {:<24} {}",
                    f["bytes"].as_u64().unwrap_or(0),
                    when,
                    f["path"].as_str().unwrap_or_default().escape_debug()
                );
            }
            if v["truncated"] == true {
                println!("(more files than one listing shows)");
            }
            println!(
                "{} bytes of {} (max_file_bytes)",
                v["bytes"].as_u64().unwrap_or(0),
                v["max_file_bytes"].as_u64().unwrap_or(0)
            );
        }
        FilesCommand::Put { local, name } => {
            let name = match name {
                Some(n) => n,
                None => local
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .with_context(|| format!("{} has no file name; give NAME", local.display()))?,
            };
            let bytes =
                std::fs::read(&local).with_context(|| format!("reading {}", local.display()))?;
            let v = r.ok("PUT", &format!("/v1/files/{name}"), Some(&bytes))?;
            println!(
                "stored {} ({} bytes, sha256 {})",
                v["path"].as_str().unwrap_or_default(),
                v["bytes"],
                v["sha256"].as_str().unwrap_or_default()
            );
        }
        FilesCommand::Get { name, output } => {
            let path = format!("/v1/files/{name}");
            match output {
                Some(out) => {
                    // Written beside the target and renamed, so a failed
                    // download leaves no half file under the name.
                    let tmp = out.with_extension("part");
                    let mut f = std::fs::File::create(&tmp)
                        .with_context(|| format!("creating {}", tmp.display()))?;
                    let n = r.download(&path, &mut f);
                    match n {
                        Ok(n) => {
                            std::fs::rename(&tmp, &out)
                                .with_context(|| format!("renaming to {}", out.display()))?;
                            eprintln!("{} bytes to {}", n, out.display());
                        }
                        Err(e) => {
                            let _ = std::fs::remove_file(&tmp);
                            return Err(e);
                        }
                    }
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut lock = stdout.lock();
                    if let Err(e) = r.download(&path, &mut lock) {
                        // `files get NAME | head` closes the pipe early:
                        // what was asked for was read, not a failure.
                        let closed = e.chain().any(|c| {
                            c.downcast_ref::<std::io::Error>()
                                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                        });
                        if !closed {
                            return Err(e);
                        }
                    }
                }
            }
        }
        FilesCommand::Rm { name } => {
            r.ok("DELETE", &format!("/v1/files/{name}"), None)?;
            println!("deleted {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
