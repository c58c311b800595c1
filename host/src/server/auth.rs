//! Tokens: `sluice_<id>_<secret>`, 8 random bytes of public id and 32 of
//! secret, both hex. The catalog keeps the id and the SHA-256 of the secret,
//! never the token; a presented secret is hashed and compared with the
//! stored hash in constant time. The operator's admin token is compared the
//! same way (hashes of both sides, so the comparison does not depend on
//! its length either).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::store::{now_ms, Scope, Store, TokenRec};

const PREFIX: &str = "sluice_";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator, with the admin token from `server.toml`.
    Operator,
    /// A tenant's token.
    Tenant {
        /// The tenant.
        tenant: String,
        /// What the token may do.
        scope: Scope,
        /// The token's public id.
        token_id: String,
    },
}

impl Principal {
    /// The tenant, when it is one and its token has at least `scope`.
    pub fn tenant_with(&self, scope: Scope) -> Option<&str> {
        match self {
            Principal::Tenant {
                tenant, scope: s, ..
            } if *s >= scope => Some(tenant),
            _ => None,
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    Ok(hex::encode(buf))
}

/// A new token for `tenant`: the record to store and the token to hand out once.
pub fn issue(tenant: &str, scope: Scope, label: &str) -> anyhow::Result<(TokenRec, String)> {
    let id = random_hex(8)?;
    let secret = random_hex(32)?;
    let rec = TokenRec {
        id: id.clone(),
        tenant: tenant.to_string(),
        scope,
        label: label.to_string(),
        secret_sha256: hex::encode(sha256(secret.as_bytes())),
        created_ms: now_ms(),
    };
    Ok((rec, format!("{PREFIX}{id}_{secret}")))
}

/// Who `token` is, or `None` when it is nobody's (unknown, revoked, malformed).
pub fn authenticate(
    store: &Store,
    admin_token: &str,
    token: &str,
) -> anyhow::Result<Option<Principal>> {
    if bool::from(
        sha256(token.as_bytes())
            .as_slice()
            .ct_eq(sha256(admin_token.as_bytes()).as_slice()),
    ) {
        return Ok(Some(Principal::Operator));
    }
    let Some((id, secret)) = token
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return Ok(None);
    };
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Some(rec) = store.token(id)? else {
        return Ok(None);
    };
    let Ok(stored) = hex::decode(&rec.secret_sha256) else {
        return Ok(None);
    };
    if !bool::from(sha256(secret.as_bytes()).as_slice().ct_eq(&stored)) {
        return Ok(None);
    }
    Ok(Some(Principal::Tenant {
        tenant: rec.tenant,
        scope: rec.scope,
        token_id: rec.id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_authenticates_and_a_changed_one_does_not() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("c.redb"))?;
        let admin = "admin-token-0123456789";
        let (rec, token) = issue("acme", Scope::Deploy, "ci")?;
        assert!(!serde_json::to_string(&rec)?.contains(&token[PREFIX.len() + 17..]));
        store.put_token(&rec)?;
        let who = authenticate(&store, admin, &token)?;
        assert_eq!(
            who.as_ref().and_then(|p| p.tenant_with(Scope::Deploy)),
            Some("acme")
        );
        assert_eq!(who.as_ref().and_then(|p| p.tenant_with(Scope::Admin)), None);
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('0') { '1' } else { '0' });
        assert_eq!(authenticate(&store, admin, &forged)?, None);
        assert_eq!(authenticate(&store, admin, "sluice_zz_zz")?, None);
        assert_eq!(
            authenticate(&store, admin, admin)?,
            Some(Principal::Operator)
        );
        store.delete_token(&rec.id)?;
        assert_eq!(authenticate(&store, admin, &token)?, None);
        Ok(())
    }
}
