//! Dotted field paths (`a.b.c`, `` `odd name`.x ``) and reading, writing and
//! removing values by path in a JSON document.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

use crate::ParseError;

/// One name of a [`Path`], with its array index precomputed when the name is
/// all ASCII digits (so `items.0` reads the first element of an array).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) name: Box<str>,
    pub(crate) index: Option<usize>,
}

impl Segment {
    pub(crate) fn new(name: &str) -> Self {
        Segment {
            name: name.into(),
            index: array_index(name),
        }
    }
}

fn array_index(name: &str) -> Option<usize> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// A parsed dotted path into a JSON document.
///
/// Text form: names separated by `.`; a name holding `.` or `` ` `` (or that
/// should be taken literally) is written between backquotes, with a doubled
/// backquote standing for one: `` `my.field`.x ``, `` `a``b` ``. Outside
/// backquotes every other character, spaces included, is part of the name.
/// A name that is all digits also indexes arrays: `items.0.sku`.
///
/// Parse once, use per event: [`Path::get`] allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    segments: Box<[Segment]>,
}

/// Why a value could not be written at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    message: String,
}

impl PathError {
    /// The human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PathError {}

/// Iterates the names of a textual path without allocating (unless a name
/// contains an escaped backquote).
struct Segments<'s> {
    src: &'s str,
    pos: usize,
    state: SegState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SegState {
    /// A name must follow (at the start, or after a `.`).
    Expect,
    /// The path ended cleanly, or an error was reported.
    Done,
}

fn column(src: &str, byte: usize) -> usize {
    src.get(..byte).map_or(byte, |s| s.chars().count()) + 1
}

impl<'s> Segments<'s> {
    fn new(src: &'s str) -> Self {
        Segments {
            src,
            pos: 0,
            state: SegState::Expect,
        }
    }

    fn fail(&mut self, byte: usize, message: String) -> Option<Result<Cow<'s, str>, ParseError>> {
        self.state = SegState::Done;
        Some(Err(ParseError::new(column(self.src, byte), message)))
    }

    /// After a name: either the end, or a `.` and another name.
    fn after_name(&mut self, end: usize) -> Result<(), (usize, String)> {
        match self.src.as_bytes().get(end) {
            None => {
                self.pos = end;
                self.state = SegState::Done;
                Ok(())
            }
            Some(b'.') => {
                self.pos = end + 1;
                Ok(())
            }
            Some(_) => Err((end, "expected '.' or the end of the path".to_string())),
        }
    }
}

impl<'s> Iterator for Segments<'s> {
    type Item = Result<Cow<'s, str>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == SegState::Done {
            return None;
        }
        let rest = self.src.get(self.pos..).unwrap_or("");
        if let Some(quoted) = rest.strip_prefix('`') {
            let start = self.pos;
            match scan_backquoted(quoted) {
                None => self.fail(start, "unterminated backquoted name".to_string()),
                Some((name, used)) => {
                    if name.is_empty() {
                        return self.fail(start, "empty field name".to_string());
                    }
                    match self.after_name(start + 1 + used) {
                        Ok(()) => Some(Ok(name)),
                        Err((at, msg)) => self.fail(at, msg),
                    }
                }
            }
        } else {
            let len = rest.find(['.', '`']).unwrap_or(rest.len());
            if len == 0 {
                let what = if rest.starts_with('.') || rest.is_empty() {
                    "empty field name"
                } else {
                    "unexpected '`'"
                };
                return self.fail(self.pos, what.to_string());
            }
            let name = &rest[..len];
            let end = self.pos + len;
            if self.src.as_bytes().get(end) == Some(&b'`') {
                return self.fail(
                    end,
                    "a backquote inside a name; quote the whole name, doubling inner backquotes"
                        .to_string(),
                );
            }
            match self.after_name(end) {
                Ok(()) => Some(Ok(Cow::Borrowed(name))),
                Err((at, msg)) => self.fail(at, msg),
            }
        }
    }
}

/// Scans a backquoted name; `s` starts just after the opening backquote.
/// Returns the name and the bytes used including the closing backquote.
pub(crate) fn scan_backquoted(s: &str) -> Option<(Cow<'_, str>, usize)> {
    let mut owned: Option<String> = None;
    let mut seg_start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'`' {
            if bytes.get(i + 1) == Some(&b'`') {
                let buf = owned.get_or_insert_with(String::new);
                buf.push_str(&s[seg_start..=i]);
                i += 2;
                seg_start = i;
                continue;
            }
            let name = match owned {
                Some(mut buf) => {
                    buf.push_str(&s[seg_start..i]);
                    Cow::Owned(buf)
                }
                None => Cow::Borrowed(&s[..i]),
            };
            return Some((name, i + 1));
        }
        i += 1;
    }
    None
}

impl Path {
    /// Parses a dotted path; errors say at which column and why.
    pub fn parse(text: &str) -> Result<Path, ParseError> {
        let segments = Segments::new(text)
            .map(|s| s.map(|name| Segment::new(&name)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Path {
            segments: segments.into(),
        })
    }

    pub(crate) fn from_segments(segments: Vec<Segment>) -> Path {
        Path {
            segments: segments.into(),
        }
    }

    /// The names of the path, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.segments.iter().map(|s| &*s.name)
    }

    /// The value at this path, or `None` when any part is missing.
    pub fn get<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        let mut cur = root;
        for seg in self.segments.iter() {
            cur = step(cur, &seg.name, seg.index)?;
        }
        Some(cur)
    }

    /// The value at this path when only some top-level fields were built:
    /// `top` is the value of the path's first name.
    pub(crate) fn get_in_fields<'a>(&self, top: &'a Value) -> Option<&'a Value> {
        let (_, rest) = self.segments.split_first()?;
        let mut cur = top;
        for seg in rest {
            cur = step(cur, &seg.name, seg.index)?;
        }
        Some(cur)
    }

    /// A mutable reference to the value at this path, if present.
    pub fn get_mut<'a>(&self, root: &'a mut Value) -> Option<&'a mut Value> {
        let mut cur = root;
        for seg in self.segments.iter() {
            cur = step_mut(cur, &seg.name, seg.index)?;
        }
        Some(cur)
    }

    /// Writes `value` at this path and returns the value it replaced.
    ///
    /// Missing (or `null`) intermediate objects are created. An array element
    /// can be replaced by index but not appended. Fails, changing nothing, when
    /// a part of the path is a scalar, or an array index is not a valid one.
    pub fn set(&self, root: &mut Value, value: Value) -> Result<Option<Value>, PathError> {
        let Some((last, parents)) = self.segments.split_last() else {
            return Err(PathError {
                message: "empty path".to_string(),
            });
        };
        let mut cur = root;
        for (depth, seg) in parents.iter().enumerate() {
            if cur.is_null() {
                *cur = Value::Object(Map::new());
            }
            cur = match cur {
                Value::Object(map) => {
                    if !map.contains_key(&*seg.name) {
                        map.insert(seg.name.to_string(), Value::Object(Map::new()));
                    }
                    match map.get_mut(&*seg.name) {
                        Some(v) => v,
                        None => return Err(self.error_at(depth, "could not be created")),
                    }
                }
                Value::Array(items) => match seg.index.and_then(|i| items.get_mut(i)) {
                    Some(v) => v,
                    None => return Err(self.bad_index(depth)),
                },
                other => return Err(self.not_container(depth, other)),
            };
        }
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let depth = parents.len();
        match cur {
            Value::Object(map) => match map.get_mut(&*last.name) {
                Some(slot) => Ok(Some(std::mem::replace(slot, value))),
                None => {
                    map.insert(last.name.to_string(), value);
                    Ok(None)
                }
            },
            Value::Array(items) => match last.index.and_then(|i| items.get_mut(i)) {
                Some(slot) => Ok(Some(std::mem::replace(slot, value))),
                None => Err(self.bad_index(depth)),
            },
            other => Err(self.not_container(depth, other)),
        }
    }

    /// Removes and returns the value at this path, if present. Removing an
    /// array element shifts the following ones.
    pub fn remove(&self, root: &mut Value) -> Option<Value> {
        let (last, parents) = self.segments.split_last()?;
        let mut cur = root;
        for seg in parents {
            cur = step_mut(cur, &seg.name, seg.index)?;
        }
        remove_step(cur, &last.name, last.index)
    }

    fn prefix(&self, depth: usize) -> String {
        Path {
            segments: self.segments.get(..depth).unwrap_or(&[]).into(),
        }
        .to_string()
    }

    fn error_at(&self, depth: usize, what: &str) -> PathError {
        PathError {
            message: format!("cannot set `{self}`: `{}` {what}", self.prefix(depth + 1)),
        }
    }

    fn not_container(&self, depth: usize, found: &Value) -> PathError {
        let message = if depth == 0 {
            format!(
                "cannot set `{self}`: the value is {}, not an object",
                type_name(found)
            )
        } else {
            format!(
                "cannot set `{self}`: `{}` is {}, not an object",
                self.prefix(depth),
                type_name(found)
            )
        };
        PathError { message }
    }

    fn bad_index(&self, depth: usize) -> PathError {
        self.error_at(depth, "is not an existing element of the array")
    }
}

impl std::str::FromStr for Path {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::parse(s)
    }
}

impl fmt::Display for Path {
    /// Writes the path back in its text form (backquoting names as needed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            let name = &*seg.name;
            if name.is_empty() || name.contains(['.', '`']) {
                write!(f, "`{}`", name.replace('`', "``"))?;
            } else {
                f.write_str(name)?;
            }
        }
        Ok(())
    }
}

/// A short description of a JSON value's type, with an article ("a string").
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn step<'a>(cur: &'a Value, name: &str, index: Option<usize>) -> Option<&'a Value> {
    match cur {
        Value::Object(map) => map.get(name),
        Value::Array(items) => items.get(index?),
        _ => None,
    }
}

fn step_mut<'a>(cur: &'a mut Value, name: &str, index: Option<usize>) -> Option<&'a mut Value> {
    match cur {
        Value::Object(map) => map.get_mut(name),
        Value::Array(items) => items.get_mut(index?),
        _ => None,
    }
}

fn remove_step(cur: &mut Value, name: &str, index: Option<usize>) -> Option<Value> {
    match cur {
        // Without serde_json's `preserve_order` feature (not enabled in this
        // workspace) maps are sorted and `remove` keeps the order; with it,
        // this should become `shift_remove`.
        Value::Object(map) => map.remove(name),
        Value::Array(items) => {
            let i = index?;
            (i < items.len()).then(|| items.remove(i))
        }
        _ => None,
    }
}

/// The value at dotted `path` in `root` (see [`Path`] for the syntax), or
/// `None` when it is missing or `path` is malformed. Allocates nothing; for
/// per-event use on a fixed path, [`Path::parse`] once and call [`Path::get`].
pub fn get_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for name in Segments::new(path) {
        let name = name.ok()?;
        cur = step(cur, &name, array_index(&name))?;
    }
    Some(cur)
}

/// Writes `value` at dotted `path` in `root`, creating missing intermediate
/// objects, and returns the value it replaced. See [`Path::set`].
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<Option<Value>, PathError> {
    let path = Path::parse(path).map_err(|e| PathError {
        message: format!("invalid path `{path}`: {e}"),
    })?;
    path.set(root, value)
}

/// Removes and returns the value at dotted `path` in `root`, if present (and
/// `None` when `path` is malformed). See [`Path::remove`].
pub fn remove_path(root: &mut Value, path: &str) -> Option<Value> {
    let mut segments = Segments::new(path).peekable();
    let mut cur = root;
    loop {
        let name = segments.next()?.ok()?;
        let index = array_index(&name);
        match segments.peek() {
            None => return remove_step(cur, &name, index),
            Some(Err(_)) => return None,
            Some(Ok(_)) => cur = step_mut(cur, &name, index)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(p: &str) -> Vec<String> {
        Path::parse(p)
            .expect("path parses")
            .names()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn parses_plain_and_backquoted_names() {
        assert_eq!(names("a"), ["a"]);
        assert_eq!(names("a.b.c"), ["a", "b", "c"]);
        assert_eq!(names("`my field`.x"), ["my field", "x"]);
        assert_eq!(names("`a.b`"), ["a.b"]);
        assert_eq!(names("x.`a``b`.y"), ["x", "a`b", "y"]);
        assert_eq!(names("my field"), ["my field"]);
        assert_eq!(names("items.0"), ["items", "0"]);
    }

    #[test]
    fn rejects_malformed_paths_with_column() {
        let err = |p: &str| Path::parse(p).expect_err("should fail").to_string();
        assert_eq!(err(""), "empty field name at column 1");
        assert_eq!(err("a..b"), "empty field name at column 3");
        assert_eq!(err("a."), "empty field name at column 3");
        assert_eq!(err(".a"), "empty field name at column 1");
        assert_eq!(err("a.`b"), "unterminated backquoted name at column 3");
        assert_eq!(
            err("`a`b"),
            "expected '.' or the end of the path at column 4"
        );
        assert!(err("a`b`").starts_with("a backquote inside a name"));
        assert_eq!(err("``"), "empty field name at column 1");
    }

    #[test]
    fn display_round_trips() {
        for p in ["a.b", "`a.b`.c", "`x``y`", "items.0"] {
            let parsed = Path::parse(p).expect("parses");
            assert_eq!(parsed.to_string(), p);
            assert_eq!(Path::parse(&parsed.to_string()).expect("reparses"), parsed);
        }
    }

    #[test]
    fn get_reads_objects_and_arrays() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}, "my.key": 1});
        assert_eq!(get_path(&v, "a.b.0"), Some(&json!(10)));
        assert_eq!(get_path(&v, "a.b.1.c"), Some(&json!("x")));
        assert_eq!(get_path(&v, "a.b.2"), None);
        assert_eq!(get_path(&v, "a.b.x"), None);
        assert_eq!(get_path(&v, "a.nope"), None);
        assert_eq!(get_path(&v, "`my.key`"), Some(&json!(1)));
        assert_eq!(get_path(&v, "my.key"), None);
        assert_eq!(get_path(&v, "a..b"), None);
        let p = Path::parse("a.b.1.c").expect("parses");
        assert_eq!(p.get(&v), Some(&json!("x")));
    }

    #[test]
    fn set_creates_intermediates_and_returns_old() {
        let mut v = json!({"a": 1, "n": null});
        assert_eq!(set_path(&mut v, "b.c.d", json!(2)), Ok(None));
        assert_eq!(set_path(&mut v, "a", json!(3)), Ok(Some(json!(1))));
        assert_eq!(set_path(&mut v, "n.x", json!(true)), Ok(None));
        assert_eq!(v, json!({"a": 3, "b": {"c": {"d": 2}}, "n": {"x": true}}));
    }

    #[test]
    fn set_into_arrays_by_index_only() {
        let mut v = json!({"l": [1, {"x": 0}]});
        assert_eq!(set_path(&mut v, "l.0", json!(9)), Ok(Some(json!(1))));
        assert_eq!(set_path(&mut v, "l.1.x", json!(5)), Ok(Some(json!(0))));
        let err = set_path(&mut v, "l.2", json!(0)).expect_err("out of range");
        assert_eq!(
            err.to_string(),
            "cannot set `l.2`: `l.2` is not an existing element of the array"
        );
        assert_eq!(v, json!({"l": [9, {"x": 5}]}));
    }

    #[test]
    fn set_through_scalar_fails_without_change() {
        let mut v = json!({"a": "text"});
        let err = set_path(&mut v, "a.b.c", json!(1)).expect_err("scalar");
        assert_eq!(
            err.message(),
            "cannot set `a.b.c`: `a` is a string, not an object"
        );
        assert_eq!(v, json!({"a": "text"}));
        let mut s = json!(5);
        let err = set_path(&mut s, "x", json!(1)).expect_err("root scalar");
        assert_eq!(
            err.message(),
            "cannot set `x`: the value is a number, not an object"
        );
        let err = set_path(&mut v, "a..b", json!(1)).expect_err("bad path");
        assert_eq!(
            err.message(),
            "invalid path `a..b`: empty field name at column 3"
        );
    }

    #[test]
    fn remove_preserves_other_keys() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "l": [1, 2, 3]});
        assert_eq!(remove_path(&mut v, "a.b"), Some(json!(1)));
        assert_eq!(remove_path(&mut v, "a.b"), None);
        assert_eq!(remove_path(&mut v, "l.1"), Some(json!(2)));
        assert_eq!(remove_path(&mut v, "l.9"), None);
        assert_eq!(remove_path(&mut v, "x.y"), None);
        assert_eq!(remove_path(&mut v, "a..c"), None);
        assert_eq!(v, json!({"a": {"c": 2}, "l": [1, 3]}));
        let p = Path::parse("a.c").expect("parses");
        assert_eq!(p.remove(&mut v), Some(json!(2)));
        assert_eq!(v, json!({"a": {}, "l": [1, 3]}));
    }
}
