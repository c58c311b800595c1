//! Server cursors driven by plain `find` / `aggregate` / `getMore` commands
//! through the official driver's `run_command`, in one explicit session (a
//! cursor must be continued in the session that created it).
//!
//! Why not the driver's typed cursors: they insist that the server sends the
//! cursor id as a BSON int64, as the wire protocol specifies. The MongoDB
//! emulation used in tests sends a non-zero id as int32, which the driver
//! rejects ("unexpected element type: Int32, expected: Int64"). Reading the
//! reply as a document accepts both, and this is the documented cursor
//! protocol, so nothing changes for a real server. Change streams follow the
//! driver specification's resume-token rules: the token after a batch is its
//! `postBatchResumeToken`, else the `_id` of the last event returned.

use std::collections::VecDeque;

use mongodb::bson::{doc, Bson, Document};
use mongodb::error::Error;
use mongodb::sync::{ClientSession, Database};

/// A cursor over command replies.
pub struct RawCursor {
    db: Database,
    session: ClientSession,
    collection: String,
    id: i64,
    buffer: VecDeque<Document>,
    post_batch_token: Option<Document>,
    last_id: Option<Document>,
    max_await_ms: Option<u64>,
}

fn bad_reply(what: &str) -> Error {
    Error::custom(format!("unexpected reply from the server: {what}"))
}

fn int(b: Option<&Bson>) -> Option<i64> {
    match b? {
        Bson::Int64(n) => Some(*n),
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

impl RawCursor {
    /// Runs `command` (a `find` or `aggregate` on `collection`) and keeps its
    /// cursor. `max_await_ms` is the `getMore` wait of a change stream.
    pub fn open(
        db: Database,
        mut session: ClientSession,
        collection: &str,
        command: Document,
        max_await_ms: Option<u64>,
    ) -> Result<Self, Error> {
        let reply = db.run_command(command).session(&mut session).run()?;
        let mut cursor = Self {
            db,
            session,
            collection: collection.to_string(),
            id: 0,
            buffer: VecDeque::new(),
            post_batch_token: None,
            last_id: None,
            max_await_ms,
        };
        cursor.take_batch(&reply, "firstBatch")?;
        Ok(cursor)
    }

    fn take_batch(&mut self, reply: &Document, field: &str) -> Result<(), Error> {
        let c = reply
            .get_document("cursor")
            .map_err(|_| bad_reply("no `cursor` document"))?;
        self.id = int(c.get("id")).ok_or_else(|| bad_reply("no cursor `id`"))?;
        if let Ok(batch) = c.get_array(field) {
            for d in batch {
                match d {
                    Bson::Document(d) => self.buffer.push_back(d.clone()),
                    _ => return Err(bad_reply("a batch entry that is not a document")),
                }
            }
        }
        self.post_batch_token = c.get_document("postBatchResumeToken").ok().cloned();
        Ok(())
    }

    /// The next document: from the current batch, or one `getMore` (which, on
    /// a change stream, waits up to `max_await_ms`). `None` when that batch
    /// was empty or the cursor is exhausted.
    pub fn next_document(&mut self) -> Result<Option<Document>, Error> {
        if self.buffer.is_empty() && self.id != 0 {
            let mut cmd = doc! {"getMore": self.id, "collection": &self.collection};
            if let Some(ms) = self.max_await_ms {
                cmd.insert("maxTimeMS", ms as i64);
            }
            let reply = self.db.run_command(cmd).session(&mut self.session).run()?;
            self.take_batch(&reply, "nextBatch")?;
        }
        let next = self.buffer.pop_front();
        if let Some(d) = &next {
            if let Ok(id) = d.get_document("_id") {
                self.last_id = Some(id.clone());
            }
        }
        Ok(next)
    }

    /// True once the server has closed the cursor and every document was read.
    pub fn exhausted(&self) -> bool {
        self.id == 0 && self.buffer.is_empty()
    }

    /// A change stream's resume token: the batch's `postBatchResumeToken`
    /// once the batch is consumed, else the last event's `_id`.
    pub fn resume_token(&self) -> Option<Document> {
        if self.buffer.is_empty() {
            self.post_batch_token
                .clone()
                .or_else(|| self.last_id.clone())
        } else {
            self.last_id
                .clone()
                .or_else(|| self.post_batch_token.clone())
        }
    }
}

impl Drop for RawCursor {
    fn drop(&mut self) {
        if self.id != 0 {
            // Best effort: the server also times idle cursors out.
            let cmd = doc! {"killCursors": &self.collection, "cursors": [self.id]};
            let _ = self.db.run_command(cmd).session(&mut self.session).run();
        }
    }
}
