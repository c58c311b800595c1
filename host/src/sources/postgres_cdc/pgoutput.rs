//! Decoder for the `pgoutput` logical replication messages (protocol
//! version 1), as documented in "Logical Replication Message Formats".

use super::wire::WireError;

/// A table's shape, sent before the first change to it and after DDL.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// Relation OID.
    pub id: u32,
    /// Schema.
    pub schema: String,
    /// Table.
    pub table: String,
    /// Replica identity: `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    /// Columns in order.
    pub columns: Vec<Column>,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Part of the replica identity (the primary key by default).
    pub key: bool,
    /// Name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
}

/// One column value in a tuple.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// An unchanged TOASTed value the server did not resend.
    Unchanged,
    /// The value in text form.
    Text(String),
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A transaction starts.
    Begin {
        /// LSN of the commit record.
        final_lsn: u64,
        /// Commit time, µs since 2000-01-01.
        commit_ts: i64,
        /// Transaction id.
        xid: u32,
    },
    /// A transaction ends.
    Commit {
        /// LSN just past the commit record: the position to confirm.
        end_lsn: u64,
        /// Commit time, µs since 2000-01-01.
        commit_ts: i64,
    },
    /// A table's shape.
    Relation(Relation),
    /// A row was inserted.
    Insert {
        /// Relation OID.
        rel: u32,
        /// The new row.
        new: Vec<Datum>,
    },
    /// A row was updated.
    Update {
        /// Relation OID.
        rel: u32,
        /// The old key (`K`) or whole old row (`O`, with REPLICA IDENTITY FULL).
        old: Option<(u8, Vec<Datum>)>,
        /// The new row.
        new: Vec<Datum>,
    },
    /// A row was deleted.
    Delete {
        /// Relation OID.
        rel: u32,
        /// The old key (`K`) or whole old row (`O`).
        old: (u8, Vec<Datum>),
    },
    /// Tables were truncated.
    Truncate {
        /// Relation OIDs.
        rels: Vec<u32>,
    },
    /// Anything else (origin, type, logical message): not needed.
    Other(u8),
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or_else(|| WireError::Protocol("truncated pgoutput message".into()))?;
        self.at += n;
        Ok(s)
    }
    fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.at)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> Result<i16, WireError> {
        let s = self.take(2)?;
        Ok(i16::from_be_bytes([s[0], s[1]]))
    }
    fn i32(&mut self) -> Result<i32, WireError> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(self.i32()? as u32)
    }
    fn i64(&mut self) -> Result<i64, WireError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(i64::from_be_bytes(a))
    }
    fn cstr(&mut self) -> Result<String, WireError> {
        let rest = self.b.get(self.at..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| WireError::Protocol("unterminated string".into()))?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Vec<Datum>, WireError> {
        let n = self.i16()?;
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                b't' => {
                    let len = self.i32()?;
                    let bytes = self.take(len.max(0) as usize)?;
                    Datum::Text(String::from_utf8_lossy(bytes).into_owned())
                }
                other => {
                    return Err(WireError::Protocol(format!(
                        "unsupported tuple column kind `{}`",
                        other as char
                    )))
                }
            });
        }
        Ok(out)
    }
}

/// Decodes one pgoutput message (the payload of an XLogData frame).
pub fn decode(b: &[u8]) -> Result<Message, WireError> {
    let mut r = Reader { b, at: 0 };
    let tag = r.u8()?;
    Ok(match tag {
        b'B' => Message::Begin {
            final_lsn: r.i64()? as u64,
            commit_ts: r.i64()?,
            xid: r.u32()?,
        },
        b'C' => {
            let _flags = r.u8()?;
            let _commit_lsn = r.i64()?;
            Message::Commit {
                end_lsn: r.i64()? as u64,
                commit_ts: r.i64()?,
            }
        }
        b'R' => {
            let id = r.u32()?;
            let schema = r.cstr()?;
            let table = r.cstr()?;
            let replica_identity = r.u8()?;
            let n = r.i16()?;
            let mut columns = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                let flags = r.u8()?;
                let name = r.cstr()?;
                let type_oid = r.u32()?;
                let _typmod = r.i32()?;
                columns.push(Column {
                    key: flags & 1 == 1,
                    name,
                    type_oid,
                });
            }
            Message::Relation(Relation {
                id,
                schema,
                table,
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let rel = r.u32()?;
            let _n = r.u8()?;
            Message::Insert {
                rel,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let rel = r.u32()?;
            let mut kind = r.u8()?;
            let mut old = None;
            if kind == b'K' || kind == b'O' {
                old = Some((kind, r.tuple()?));
                kind = r.u8()?;
            }
            if kind != b'N' {
                return Err(WireError::Protocol("update without a new tuple".into()));
            }
            Message::Update {
                rel,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let rel = r.u32()?;
            let kind = r.u8()?;
            Message::Delete {
                rel,
                old: (kind, r.tuple()?),
            }
        }
        b'T' => {
            let n = r.i32()?;
            let _options = r.u8()?;
            // The count comes off the wire: reserve only what the message
            // can hold (4 bytes a relation), never what it claims.
            let mut rels = Vec::with_capacity((n.max(0) as usize).min(r.remaining() / 4));
            for _ in 0..n {
                rels.push(r.u32()?);
            }
            Message::Truncate { rels }
        }
        other => Message::Other(other),
    })
}

/// `X/Y` form of an LSN, as PostgreSQL prints it.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Parses the `X/Y` form.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &str) -> Vec<u8> {
        let mut b = vec![b't'];
        b.extend_from_slice(&(v.len() as i32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
        b
    }

    #[test]
    fn a_truncate_claiming_two_billion_relations_reserves_nothing_and_is_refused() {
        // 10 bytes that once asked for an 8 GiB vector, which aborts the process.
        let mut b = vec![b'T'];
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        b.push(0);
        b.extend_from_slice(&7u32.to_be_bytes());
        let e = decode(&b).expect_err("the message holds one relation, not i32::MAX");
        assert!(e.to_string().contains("truncated pgoutput message"), "{e}");
    }

    #[test]
    fn lsn_round_trips() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nope"), None);
    }

    #[test]
    fn update_with_old_row_decodes() {
        let mut b = vec![b'U'];
        b.extend_from_slice(&42u32.to_be_bytes());
        b.push(b'O');
        b.extend_from_slice(&2i16.to_be_bytes());
        b.extend(text("1"));
        b.push(b'n');
        b.push(b'N');
        b.extend_from_slice(&2i16.to_be_bytes());
        b.extend(text("1"));
        b.push(b'u');
        let m = decode(&b).ok();
        assert_eq!(
            m,
            Some(Message::Update {
                rel: 42,
                old: Some((b'O', vec![Datum::Text("1".into()), Datum::Null])),
                new: vec![Datum::Text("1".into()), Datum::Unchanged],
            })
        );
    }

    #[test]
    fn truncated_messages_are_errors() {
        assert!(decode(&[b'I', 0, 0]).is_err());
    }
}
