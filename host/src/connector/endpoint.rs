//! Which hosts a connector reaches, read from its configuration, so a server
//! can hold each tenant to the hosts its operator granted. Only the
//! configuration is read: nothing here resolves a name or opens a socket.

use std::fmt;

/// A host a connector connects to, and its port when the configuration
/// fixes one (a `mongodb+srv://` name does not: DNS picks the ports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A DNS name or an IP address, without brackets, lower case.
    pub host: String,
    /// The TCP port.
    pub port: Option<u16>,
}

impl Endpoint {
    /// `host` at `port`.
    pub fn new(host: &str, port: Option<u16>) -> Self {
        Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bracketed = self.host.contains(':');
        match (self.port, bracketed) {
            (Some(p), true) => write!(f, "[{}]:{p}", self.host),
            (Some(p), false) => write!(f, "{}:{p}", self.host),
            (None, _) => f.write_str(&self.host),
        }
    }
}

/// What a connector reaches: `None` when its configuration cannot say
/// (a server then lets it run only for a tenant granted every host).
pub type Reach = Option<Vec<Endpoint>>;

/// The host of an HTTP(S) URL, parsed as the HTTP clients parse it (the
/// WHATWG rules of the `url` crate: `http://a\@b` reaches `a`). `None` for
/// another scheme or no host.
pub fn from_http_url(url: &str) -> Reach {
    let u = url::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let host = match u.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    };
    Some(vec![Endpoint::new(&host, u.port_or_known_default())])
}

/// A socket path: it matches no host grant but `*`.
pub fn unix_socket(path: &str) -> Endpoint {
    Endpoint {
        host: format!("unix:{path}"),
        port: None,
    }
}

/// `h1:p1,h2:p2` (Kafka's `bootstrap.servers`), a missing port being
/// `default_port`. `None` when an entry is empty or its port is not a number.
pub fn list(hosts: &str, default_port: Option<u16>) -> Reach {
    let mut out = Vec::new();
    for entry in hosts.split(',').map(str::trim) {
        out.push(host_port(entry, default_port)?);
    }
    Some(out)
}

fn host_port(entry: &str, default_port: Option<u16>) -> Option<Endpoint> {
    // A scheme some clients accept in broker lists (`SASL_SSL://h:9093`).
    let entry = entry.split_once("://").map_or(entry, |(_, e)| e);
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p.parse().ok()?)),
            None if after.is_empty() => (h, default_port),
            None => return None,
        }
    } else {
        match entry.rsplit_once(':') {
            // Two colons and no brackets: a bare IPv6 address.
            Some((h, _)) if h.contains(':') => (entry, default_port),
            Some((h, p)) => (h, Some(p.parse().ok()?)),
            None => (entry, default_port),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    Some(Endpoint::new(host, port))
}

/// The endpoints of `reaches`, all of them, or `None` if any cannot say.
pub fn all(reaches: impl IntoIterator<Item = Reach>) -> Reach {
    let mut out = Vec::new();
    for r in reaches {
        out.extend(r?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(r: Reach) -> Option<Vec<String>> {
        r.map(|v| v.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn http_urls_give_the_host_the_client_reaches() {
        assert_eq!(
            shown(from_http_url("https://u:p@ES.internal/_bulk")),
            Some(vec!["es.internal:443".into()])
        );
        assert_eq!(
            shown(from_http_url("http://[::1]:9200")),
            Some(vec!["[::1]:9200".into()])
        );
        // A backslash ends the authority in an HTTP URL: the host is `a`.
        assert_eq!(
            shown(from_http_url("http://a.example\\@b.example/")),
            Some(vec!["a.example:80".into()])
        );
        assert_eq!(shown(from_http_url("es.internal:9200")), None);
        assert_eq!(shown(from_http_url("ftp://h/")), None);
    }

    #[test]
    fn broker_lists_give_each_broker() {
        assert_eq!(
            shown(list("k1:9092, SASL_SSL://k2:9093,10.0.0.7", Some(9092))),
            Some(vec![
                "k1:9092".into(),
                "k2:9093".into(),
                "10.0.0.7:9092".into()
            ])
        );
        assert_eq!(shown(list("k1:9092,", Some(9092))), None);
        assert_eq!(shown(list("k1:x", Some(9092))), None);
    }

    #[test]
    fn all_is_unknown_when_one_part_is() {
        assert_eq!(all([Some(vec![]), None]), None);
        assert_eq!(
            shown(all([list("a:1", None), list("b:2", None)])),
            Some(vec!["a:1".into(), "b:2".into()])
        );
    }
}
