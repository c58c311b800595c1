//! `sluice --server URL connection ls|show|set|rm`: a tenant's named
//! connections (`/v1/connections`).
//!
//! Secret values are read from a file or an environment variable, never
//! from the command line, where shell history and `ps` would keep them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::remote_cmd::Remote;

/// Named connections on a server.
#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// List the tenant's connections: type, settings and the pipelines naming each.
    Ls,
    /// One connection as JSON (secrets and files by name only).
    Show {
        /// The connection.
        name: String,
    },
    /// Create or replace a connection.
    #[command(after_help = "\
Examples:
  sluice --server http://127.0.0.1:7070 connection set warehouse --type postgres \\
      --secret url=@/run/secrets/warehouse-url \\
      --field tls.mode=verify-full --file tls.ca_file=ca.pem
  sluice --server http://127.0.0.1:7070 connection set events --type kafka \\
      --field brokers=kafka-1:9092 --secret-env sasl.password=KAFKA_PASSWORD
Pipelines then name it: `sinks: {dw: {type: postgres, connection: warehouse, ...}}`.
A setting the connection gives cannot be set again in the pipeline. Secrets and
files are sealed on the server and never shown again; `set` replaces the whole
connection, so give every setting each time.")]
    Set {
        /// The connection.
        name: String,
        /// The connector type it is for (any when left out).
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// A plain setting, KEY=VALUE (numbers and true/false as such; `tls.mode` nests); repeatable.
        #[arg(long, value_name = "KEY=VALUE")]
        field: Vec<String>,
        /// A secret read from a file, KEY=@PATH (one trailing newline dropped); repeatable.
        #[arg(long, value_name = "KEY=@PATH")]
        secret: Vec<String>,
        /// A secret read from an environment variable, KEY=VAR; repeatable.
        #[arg(long, value_name = "KEY=VAR")]
        secret_env: Vec<String>,
        /// A file's contents (a TLS certificate or key), KEY=PATH; repeatable.
        #[arg(long, value_name = "KEY=PATH")]
        file: Vec<String>,
    },
    /// Delete a connection no pipeline names.
    Rm {
        /// The connection.
        name: String,
    },
}

/// Runs `command` against the server at `url`.
pub fn run(url: &str, command: ConnectionCommand) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    match command {
        ConnectionCommand::Ls => {
            let v = r.ok("GET", "/v1/connections", None)?;
            println!("{:<24} {:<14} {:<36} USED BY", "NAME", "TYPE", "SETTINGS");
            for c in v["connections"].as_array().into_iter().flatten() {
                println!("{}", line(c));
            }
        }
        ConnectionCommand::Show { name } => {
            let v = r.ok("GET", &format!("/v1/connections/{name}"), None)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        ConnectionCommand::Set {
            name,
            kind,
            field,
            secret,
            secret_env,
            file,
        } => {
            let body = body(kind, &field, &secret, &secret_env, &file, &|v| {
                std::env::var(v).ok()
            })?;
            let v = r.ok(
                "PUT",
                &format!("/v1/connections/{name}"),
                Some(body.to_string().as_bytes()),
            )?;
            println!("{}", line(&v));
        }
        ConnectionCommand::Rm { name } => {
            r.ok("DELETE", &format!("/v1/connections/{name}"), None)?;
            println!("deleted {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn line(c: &Value) -> String {
    let names = |k: &str| -> Vec<String> {
        c[k].as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mut settings: Vec<String> = c["fields"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    settings.extend(
        names("secrets")
            .into_iter()
            .map(|s| format!("{s} (secret)")),
    );
    settings.extend(names("files").into_iter().map(|s| format!("{s} (file)")));
    format!(
        "{:<24} {:<14} {:<36} {}",
        c["name"].as_str().unwrap_or_default(),
        c["type"].as_str().unwrap_or("any"),
        settings.join(", "),
        names("used_by").join(", ")
    )
}

fn split<'a>(flag: &str, arg: &'a str) -> Result<(&'a str, &'a str)> {
    arg.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .with_context(|| format!("--{flag} {arg}: expected KEY=..."))
}

/// Sets `a.b` in `m` as `{"a": {"b": value}}` (the API takes nested
/// fields as objects).
fn nest(m: &mut Map<String, Value>, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            m.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let slot = m
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                nest(inner, rest, value);
            }
        }
    }
}

/// The request body from the flags; `env` reads variables.
fn body(
    kind: Option<String>,
    fields: &[String],
    secrets: &[String],
    secret_env: &[String],
    files: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Value> {
    let mut f = Map::new();
    for arg in fields {
        let (k, v) = split("field", arg)?;
        let value = match serde_json::from_str::<Value>(v) {
            Ok(n @ (Value::Number(_) | Value::Bool(_))) => n,
            _ => Value::String(v.to_string()),
        };
        nest(&mut f, k, value);
    }
    let mut s = BTreeMap::new();
    for arg in secrets {
        let (k, v) = split("secret", arg)?;
        let Some(path) = v.strip_prefix('@') else {
            bail!("--secret {k}=...: give the secret as {k}=@FILE (or --secret-env {k}=VAR); a value on the command line stays in shell history and `ps`");
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--secret {k}: reading {path}"))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        s.insert(k.to_string(), text.to_string());
    }
    for arg in secret_env {
        let (k, var) = split("secret-env", arg)?;
        let value = env(var).with_context(|| format!("--secret-env {k}: ${var} is not set"))?;
        s.insert(k.to_string(), value);
    }
    let mut fl = BTreeMap::new();
    for arg in files {
        let (k, path) = split("file", arg)?;
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("--file {k}: reading {}", path.display()))?;
        fl.insert(k.to_string(), text);
    }
    Ok(json!({"type": kind, "fields": f, "secrets": s, "files": fl}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_the_body_and_a_secret_value_on_the_command_line_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "s3cret\n")?;
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nAA==\n")?;
        let env = |v: &str| (v == "KAFKA_PW").then(|| "from-env".to_string());
        let b = body(
            Some("postgres".into()),
            &[
                "port=5432".into(),
                "tls.mode=verify-full".into(),
                "host=db.internal".into(),
            ],
            &[format!("password=@{}", secret.display())],
            &["sasl.password=KAFKA_PW".into()],
            &[format!("tls.ca_file={}", ca.display())],
            &env,
        )?;
        assert_eq!(
            b,
            json!({"type": "postgres",
                "fields": {"port": 5432, "tls": {"mode": "verify-full"}, "host": "db.internal"},
                "secrets": {"password": "s3cret", "sasl.password": "from-env"},
                "files": {"tls.ca_file": "-----BEGIN CERTIFICATE-----\nAA==\n"}})
        );
        let err = body(None, &[], &["password=hunter2".into()], &[], &[], &env)
            .expect_err("a literal secret");
        assert!(err.to_string().contains("password=@FILE"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = body(None, &[], &[], &["x=NOPE".into()], &[], &env).expect_err("unset");
        assert_eq!(err.to_string(), "--secret-env x: $NOPE is not set");
        let err = body(None, &["novalue".into()], &[], &[], &[], &env).expect_err("no =");
        assert_eq!(err.to_string(), "--field novalue: expected KEY=...");
        Ok(())
    }
}
