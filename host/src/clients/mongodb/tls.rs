//! The `tls:` block and `password_file` for the MongoDB driver (rustls).
//! SCRAM and `authSource` come from the connection string as usual; the
//! driver's rustls build cannot skip only the host name check or verify
//! another name, so `verify-ca`, `prefer` and `server_name` are refused at
//! validation rather than silently weakened.

use std::path::{Path, PathBuf};

use mongodb::options::{ClientOptions, Credential, Tls, TlsOptions as DriverTls};

use crate::clients::tls::{read_password_file, TlsMode, TlsOptions, TLS_FIELDS};
use crate::connector::ConfigIssue;

/// What a MongoDB connector adds to its connection string.
#[derive(Debug, Clone, Copy, Default)]
pub struct Access<'a> {
    /// The `tls:` block.
    pub tls: Option<&'a TlsOptions>,
    /// `password_file`.
    pub password_file: Option<&'a Path>,
}

impl Access<'_> {
    /// Checks the options and reads the files (at validation).
    pub fn check(&self) -> Result<(), ConfigIssue> {
        self.driver_tls()?;
        if let Some(p) = self.password_file {
            read_password_file(p)?;
        }
        Ok(())
    }

    /// The driver's TLS setting; `None` leaves the connection string's.
    fn driver_tls(&self) -> Result<Option<Tls>, ConfigIssue> {
        let Some(o) = self.tls else {
            return Ok(None);
        };
        let issue = |field: &str, m: &str| ConfigIssue::anchored("tls", field, m);
        if o.server_name.is_some() {
            return Err(issue(
                "tls.server_name",
                "not supported by the MongoDB driver; connect by the name in the server's certificate",
            ));
        }
        // Loads the files: a bad path or PEM fails here, with its field.
        let mode = o.mode.unwrap_or(TlsMode::VerifyFull);
        let mut probe = o.clone();
        if mode == TlsMode::Require {
            // `require` never verifies here, whatever ca_file says.
            probe.mode = Some(TlsMode::VerifyFull);
        }
        probe.build(TlsMode::VerifyFull, TLS_FIELDS)?;
        let mut driver = DriverTls::default();
        match mode {
            TlsMode::Disable => return Ok(Some(Tls::Disabled)),
            TlsMode::Prefer | TlsMode::VerifyCa => return Err(issue(
                "tls.mode",
                "the MongoDB driver (rustls) supports `disable`, `require` and `verify-full` only",
            )),
            TlsMode::Require => driver.allow_invalid_certificates = Some(true),
            TlsMode::VerifyFull => {}
        }
        driver.ca_file_path = o.ca_file.clone();
        match (&o.cert_file, &o.key_file) {
            (Some(c), Some(k)) if c == k => driver.cert_key_file_path = Some(PathBuf::from(c)),
            (Some(_), Some(_)) => {
                return Err(issue(
                    "tls.key_file",
                    "the MongoDB driver reads the client certificate and its key from one PEM file; put both in one file and set `cert_file` and `key_file` to it",
                ))
            }
            _ => {}
        }
        Ok(Some(Tls::Enabled(driver)))
    }

    /// Applies TLS and the password file to parsed options.
    pub fn apply(&self, options: &mut ClientOptions) -> anyhow::Result<()> {
        if let Some(tls) = self.driver_tls()? {
            options.tls = Some(tls);
        }
        if let Some(p) = self.password_file {
            let password = read_password_file(p)?;
            let credential = options.credential.get_or_insert_with(Credential::default);
            if credential.username.is_none() {
                anyhow::bail!("`password_file` is set but the connection string names no user; write mongodb://USER@host/…");
            }
            credential.password = Some(password);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(v: serde_json::Value) -> TlsOptions {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn field(access: Access<'_>) -> Option<String> {
        access.check().err().map(|i| i.field)
    }

    #[test]
    fn what_the_driver_cannot_do_is_refused_with_the_field() {
        let o = tls(serde_json::json!({"mode": "verify-ca"}));
        let a = Access {
            tls: Some(&o),
            password_file: None,
        };
        assert_eq!(field(a).as_deref(), Some("tls.mode"));
        let o = tls(serde_json::json!({"server_name": "db"}));
        let a = Access {
            tls: Some(&o),
            password_file: None,
        };
        assert_eq!(field(a).as_deref(), Some("tls.server_name"));
        let o = tls(serde_json::json!({"ca_file": "/nonexistent/ca.pem"}));
        let a = Access {
            tls: Some(&o),
            password_file: None,
        };
        assert_eq!(field(a).as_deref(), Some("tls.ca_file"));
    }

    #[test]
    fn require_skips_verification_and_the_password_file_is_applied() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
        let o = tls(serde_json::json!({"mode": "require"}));
        let a = Access {
            tls: Some(&o),
            password_file: Some(&pw),
        };
        let mut options = ClientOptions::default();
        options.credential = Some(Credential::builder().username("app".to_string()).build());
        a.apply(&mut options).unwrap_or_else(|e| panic!("{e}"));
        match &options.tls {
            Some(Tls::Enabled(t)) => assert_eq!(t.allow_invalid_certificates, Some(true)),
            other => panic!("TLS expected, got {other:?}"),
        }
        let password = options.credential.and_then(|c| c.password);
        assert_eq!(password.as_deref(), Some("s3cret"));
    }
}
