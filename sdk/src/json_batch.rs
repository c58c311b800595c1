//! [`BatchViews`]: the views of a whole batch, each event scanned once.

use std::borrow::Cow;

use super::{scan_root, Entry, JsonError, JsonView};

/// The field tables of a batch's events, kept from one pass to the next.
///
/// A [`crate::Processor`] that reads every event in `prepare` (to collect
/// lookup keys, say) and again in `process` would otherwise scan each value
/// twice; scanning is most of what a view costs. `prepare` calls
/// [`BatchViews::scan`] with each event's index, `process` asks
/// [`BatchViews::get`] for the same index and bytes. The tables of all the
/// batch's events live in one vector that is reused from batch to batch, so
/// a steady stream allocates nothing.
///
/// `get` answers only for the very bytes `scan` saw (same address and
/// length, which within one call means the same event), so a caller that
/// passes another value gets `None` and scans it itself: a table is never
/// applied to bytes it does not describe.
#[derive(Debug, Default, Clone)]
pub struct BatchViews {
    entries: Vec<Entry>,
    slots: Vec<Option<Slot>>,
}

#[derive(Debug, Clone)]
struct Slot {
    addr: usize,
    len: usize,
    table: Result<(usize, usize), JsonError>,
}

impl BatchViews {
    /// No views.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every view (the start of a batch); keeps the memory.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.slots.clear();
    }

    /// Checks `bytes` (event `index`'s value) as [`JsonView::parse`] does and
    /// keeps its table for [`BatchViews::get`]. Scanning an index again
    /// replaces its view.
    pub fn scan<'a>(
        &'a mut self,
        index: usize,
        bytes: &'a [u8],
    ) -> Result<JsonView<'a>, JsonError> {
        self.scan_with_table(index, bytes, None)
    }

    /// [`BatchViews::scan`] of an event's value, from the host's field table
    /// when it sent one ([`super::table`]).
    pub fn scan_event<'a>(
        &'a mut self,
        event: &crate::Event<'a>,
    ) -> Option<Result<JsonView<'a>, JsonError>> {
        let bytes = event.value()?;
        Some(self.scan_with_table(event.index(), bytes, event.field_table()))
    }

    fn scan_with_table<'a>(
        &'a mut self,
        index: usize,
        bytes: &'a [u8],
        field_table: Option<&[u8]>,
    ) -> Result<JsonView<'a>, JsonError> {
        let start = self.entries.len();
        let table =
            if field_table.is_some_and(|t| super::table::decode(bytes, t, &mut self.entries)) {
                Ok((start, self.entries.len()))
            } else {
                match scan_root(bytes, &mut self.entries) {
                    Ok(()) => Ok((start, self.entries.len())),
                    Err(e) => {
                        self.entries.truncate(start);
                        Err(e)
                    }
                }
            };
        if self.slots.len() <= index {
            self.slots.resize(index + 1, None);
        }
        self.slots[index] = Some(Slot {
            addr: bytes.as_ptr() as usize,
            len: bytes.len(),
            table: table.clone(),
        });
        let (s, e) = table?;
        Ok(JsonView {
            bytes,
            fields: Cow::Borrowed(&self.entries[s..e]),
        })
    }

    /// The view [`BatchViews::scan`] made of event `index`, if it was made
    /// of these very `bytes`; its error if they were not JSON.
    pub fn get<'a>(
        &'a self,
        index: usize,
        bytes: &'a [u8],
    ) -> Option<Result<JsonView<'a>, JsonError>> {
        let slot = self.slots.get(index)?.as_ref()?;
        if slot.addr != bytes.as_ptr() as usize || slot.len != bytes.len() {
            return None;
        }
        Some(match &slot.table {
            Ok((s, e)) => Ok(JsonView {
                bytes,
                fields: Cow::Borrowed(self.entries.get(*s..*e)?),
            }),
            Err(err) => Err(err.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_scanned_once_and_served_only_for_the_same_bytes() {
        let a = br#"{"k":1,"v":"a"}"#.to_vec();
        let b = br#"{"k":2}"#.to_vec();
        let bad = b"{\"k\":".to_vec();
        let mut views = BatchViews::new();
        assert_eq!(views.scan(0, &a).expect("json").len(), 2);
        assert!(views.scan(2, &bad).is_err(), "index 1 skipped, 2 is bad");
        assert_eq!(views.scan(3, &b).expect("json").len(), 1);

        let v = views.get(0, &a).expect("kept").expect("json");
        assert_eq!(v.get("v").map(|r| r.text()), Some(r#""a""#));
        assert_eq!(
            views
                .get(3, &b)
                .expect("kept")
                .expect("json")
                .get("k")
                .map(|r| r.text()),
            Some("2")
        );
        let err = views.get(2, &bad).expect("kept").expect_err("not json");
        assert_eq!(err, JsonView::parse(&bad).expect_err("not json"));
        assert!(views.get(1, &a).is_none(), "never scanned");
        assert!(views.get(9, &a).is_none(), "out of range");
        // Equal text at another address is other bytes: no view.
        let copy = a.clone();
        assert!(views.get(0, &copy).is_none());
        // A view is never applied to bytes of another length at the same place.
        assert!(views.get(0, &a[..5]).is_none());

        views.clear();
        assert!(views.get(0, &a).is_none());
    }
}
