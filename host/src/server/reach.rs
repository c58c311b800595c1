//! What a tenant's loaded pipeline reaches, checked once named connections
//! have filled in its settings (the YAML checks of [`super::policy`] cannot
//! see what a connection lends): the hosts each connector connects to
//! against the tenant's host grant, and settings only the operator may use.

use std::path::Path;

use crate::config::{Diagnostic, Diagnostics, Location, Node};

/// The problems of `pipeline` (loaded from `root`) under a tenant's host
/// grant `hosts`: a connector reaching a host outside it, one that cannot
/// say which hosts it reaches (unless every host is granted), and settings
/// that reach the server's own files, programs or credentials.
pub fn check(
    pipeline: &crate::config::Pipeline,
    root: &Node,
    file: &Path,
    hosts: &[String],
) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let mut connectors: Vec<(String, Option<&Node>, Location, ConnectorView<'_>)> = Vec::new();
    for d in &pipeline.sources {
        let body = root.get("sources").and_then(|n| n.get(&d.name));
        connectors.push((
            format!("sources.{}", d.name),
            body,
            d.at,
            ConnectorView::Source(&*d.config),
        ));
    }
    for d in &pipeline.sinks {
        let body = root.get("sinks").and_then(|n| n.get(&d.name));
        connectors.push((
            format!("sinks.{}", d.name),
            body,
            d.at,
            ConnectorView::Sink(&*d.config),
        ));
    }
    if let Some(c) = &pipeline.dead_letter {
        let body = root.get("dead_letter");
        let at = body.map_or(root.at, |b| b.at);
        connectors.push(("dead_letter".into(), body, at, ConnectorView::Sink(&**c)));
    }
    let every_host = hosts.iter().any(|h| h == "*");
    for (field, body, at, c) in connectors {
        // Where a setting is written: its key, else the `connection:` that
        // lent it, else the connector.
        let anchor = |key: &str| {
            let first = key.split('.').next().unwrap_or(key);
            body.and_then(|b| b.get(first).or_else(|| b.get("connection")))
                .map_or(at, |n| n.at)
        };
        if let Err(issue) = c.operator_only() {
            diags.push(Diagnostic::new(
                file,
                anchor(&issue.field),
                &format!("{field}.{}", issue.field),
                issue.message,
            ));
        }
        if every_host {
            continue;
        }
        let where_ = ["url", "uri", "brokers", "endpoint", "grants"]
            .into_iter()
            .find(|k| body.is_some_and(|b| b.get(k).is_some()))
            .unwrap_or("connection");
        match c.endpoints() {
            None => diags.push(Diagnostic::new(
                file,
                anchor(where_),
                &field,
                "the hosts this connector reaches cannot be read from its settings; on this server only a tenant granted every host (`hosts = [\"*\"]`) may use it".into(),
            )),
            Some(list) => {
                let mut refused: Vec<String> = list
                    .iter()
                    .filter(|e| !crate::server::config::host_granted(hosts, e))
                    .map(ToString::to_string)
                    .collect();
                refused.dedup();
                if !refused.is_empty() {
                    let granted = if hosts.is_empty() {
                        "none".to_string()
                    } else {
                        hosts.join(", ")
                    };
                    diags.push(Diagnostic::new(
                        file,
                        anchor(where_),
                        &field,
                        format!(
                            "reaches {}, not granted to this tenant (granted hosts: {granted}); the operator grants hosts with `hosts` in server.toml",
                            refused.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
    }
    diags
}

/// A source's or sink's configuration, for the checks both share.
enum ConnectorView<'a> {
    Source(&'a dyn crate::connector::SourceConfig),
    Sink(&'a dyn crate::connector::SinkConfig),
}

impl ConnectorView<'_> {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        match self {
            Self::Source(c) => c.endpoints(),
            Self::Sink(c) => c.endpoints(),
        }
    }
    fn operator_only(&self) -> Result<(), crate::connector::ConfigIssue> {
        match self {
            Self::Source(c) => c.operator_only(),
            Self::Sink(c) => c.operator_only(),
        }
    }
}
