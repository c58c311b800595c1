//! Sealing named connections' secrets at rest.
//!
//! Each value is sealed with ChaCha20-Poly1305 (ring, already in the build
//! for TLS) under the server's 32-byte key, with a random 96-bit nonce, and
//! bound to its tenant, connection and field as associated data: a sealed
//! value copied into another tenant's record, or under another field, fails
//! to open instead of leaking. The catalog holds `v1:` + base64(nonce ‖
//! ciphertext ‖ tag), never the value.
//!
//! The key lives in `secrets_key_file` (server.toml), or in
//! `DATA_DIR/secrets.key`, made on first start (0600, exclusively) and
//! refused when others may read it. Keeping it outside the data dir means a
//! copy of the data dir alone does not reveal the secrets.

use std::path::Path;

use anyhow::{anyhow, Result};
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use crate::plugin::CacheKey;

const VERSION: &str = "v1:";

/// The server key.
pub struct SecretKey(LessSafeKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Where a sealed value belongs; a value opens only where it was sealed.
pub struct Place<'a> {
    /// Owner.
    pub tenant: &'a str,
    /// The connection.
    pub connection: &'a str,
    /// `secrets.FIELD` or `files.FIELD`.
    pub field: &'a str,
}

impl Place<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut v = b"sluice-connection-secret".to_vec();
        for part in [self.tenant, self.connection, self.field] {
            v.push(0);
            v.extend_from_slice(part.as_bytes());
        }
        v
    }
}

impl SecretKey {
    /// Reads the key at `path`, making it first if there is none.
    pub fn open_or_create(path: &Path) -> Result<Self> {
        let key = CacheKey::open_or_create_file(path)
            .map_err(|e| anyhow!("the secrets key {}: {e:#}", path.display()))?;
        Self::from_bytes(key.bytes())
    }

    fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| anyhow!("the secrets key is not a ChaCha20-Poly1305 key"))?;
        Ok(Self(LessSafeKey::new(unbound)))
    }

    /// `value` sealed for `place`.
    pub fn seal(&self, place: &Place<'_>, value: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| anyhow!("no randomness for a nonce: {e}"))?;
        let mut out = value.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(place.aad()),
                &mut out,
            )
            .map_err(|_| anyhow!("sealing failed"))?;
        let mut framed = nonce.to_vec();
        framed.extend_from_slice(&out);
        Ok(format!(
            "{VERSION}{}",
            base64::engine::general_purpose::STANDARD.encode(framed)
        ))
    }

    /// The value sealed for `place`, or why it cannot be opened (another
    /// key, another place, or damage).
    pub fn open(&self, place: &Place<'_>, sealed: &str) -> Result<Vec<u8>> {
        let failed = || {
            anyhow!(
                "cannot open `{}` of connection `{}`: sealed with another key or for another place, or damaged",
                place.field,
                place.connection
            )
        };
        let body = sealed.strip_prefix(VERSION).ok_or_else(failed)?;
        let mut framed = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| failed())?;
        if framed.len() < NONCE_LEN {
            return Err(failed());
        }
        let mut data = framed.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&framed).map_err(|_| failed())?;
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(place.aad()), &mut data)
            .map_err(|_| failed())?;
        Ok(plain.to_vec())
    }
}

/// With a shared catalog: the first server seals a known value with its
/// key into the catalog; every server after it must open it, or it would
/// seal secrets the others cannot open (and fail to open theirs).
pub fn check_shared_key(
    pg: &super::pgstore::PgStore,
    key: &SecretKey,
    key_file: &Path,
) -> Result<()> {
    let place = Place {
        tenant: "",
        connection: "",
        field: "catalog-key-check",
    };
    let sealed = pg.meta_init("secrets_key_check", &key.seal(&place, b"sluice")?)?;
    match key.open(&place, &sealed) {
        Ok(v) if v == b"sluice" => Ok(()),
        _ => Err(anyhow!(
            "the secrets key {} is not the key of the catalog at {}: every server sharing a catalog needs the same secrets_key_file (copy the first server's)",
            key_file.display(),
            pg.describe
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place<'a>(tenant: &'a str, field: &'a str) -> Place<'a> {
        Place {
            tenant,
            connection: "db",
            field,
        }
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_at_its_place() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let key = SecretKey::open_or_create(&dir.path().join("secrets.key"))?;
        let sealed = key.seal(&place("acme", "secrets.password"), b"hunter2-hunter2")?;
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            key.open(&place("acme", "secrets.password"), &sealed)?,
            b"hunter2-hunter2"
        );
        // Two seals of one value differ (random nonces).
        assert_ne!(
            sealed,
            key.seal(&place("acme", "secrets.password"), b"hunter2-hunter2")?
        );
        // Moved to another tenant or field, it does not open.
        for other in [
            place("evil", "secrets.password"),
            place("acme", "secrets.user"),
        ] {
            let err = key.open(&other, &sealed).expect_err("opened elsewhere");
            assert!(err.to_string().contains("cannot open"), "{err}");
        }
        // Reopening the key file gives the same key; another key fails.
        let again = SecretKey::open_or_create(&dir.path().join("secrets.key"))?;
        assert_eq!(
            again.open(&place("acme", "secrets.password"), &sealed)?,
            b"hunter2-hunter2"
        );
        let other = SecretKey::open_or_create(&dir.path().join("other.key"))?;
        assert!(other
            .open(&place("acme", "secrets.password"), &sealed)
            .is_err());
        // Damage is refused, not a panic.
        for bad in ["", "v1:", "v1:!!!", "v2:AAAA", &sealed[..sealed.len() - 2]] {
            assert!(
                key.open(&place("acme", "secrets.password"), bad).is_err(),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("secrets.key");
        std::fs::write(&path, [7u8; 32])?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        let err = SecretKey::open_or_create(&path).expect_err("a readable key was taken");
        assert!(err.to_string().contains("secrets.key"), "{err:#}");
        Ok(())
    }
}
