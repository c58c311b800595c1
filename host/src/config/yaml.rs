//! A YAML tree that remembers where every node came from, so validation can
//! point at a line and column instead of just a field name.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a node starts in the file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// One YAML node with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: Kind,
    /// Where it starts.
    pub at: Location,
}

/// The value of a node. Scalars keep their text; typing happens on conversion.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar; `quoted` scalars are always strings.
    Scalar {
        /// The scalar text.
        text: String,
        /// True for quoted or block scalars.
        quoted: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Entries of a mapping, if this is one.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// A mapping entry by key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Follows a path of map keys / sequence indexes as serde reports them,
    /// returning the deepest node reached (for pointing at an error).
    pub fn locate<'a>(&'a self, path: &[String]) -> &'a Node {
        let mut node = self;
        for seg in path {
            let next = match &node.kind {
                Kind::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| k.as_str() == Some(seg.as_str()))
                    .map(|(_, v)| v),
                Kind::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                Kind::Scalar { .. } => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// The location of the *key* of map entry `key`, if present.
    pub fn key_location(&self, key: &str) -> Option<Location> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k.at)
    }

    /// A short word for the node's shape, for "expected X, found Y" messages.
    pub fn shape(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error with its location.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// Where.
    pub at: Location,
    /// What the parser said.
    pub message: String,
}

/// Parses one YAML document. An empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        at: Location {
            line: e.marker().line(),
            col: e.marker().col() + 1,
        },
        message: e.info().to_string(),
    })?;
    if let Some(msg) = builder.error {
        return Err(SyntaxError {
            at: builder.error_at,
            message: msg,
        });
    }
    Ok(builder.root.unwrap_or(Node {
        kind: Kind::Map(Vec::new()),
        at: Location { line: 1, col: 1 },
    }))
}

enum Frame {
    Seq(Location, Vec<Node>),
    Map(Location, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    error: Option<String>,
    error_at: Location,
}

impl Builder {
    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending_key)) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }
}

fn loc(mark: Marker) -> Location {
    Location {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, _, _) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                self.push_node(Node {
                    kind: Kind::Scalar { text, quoted },
                    at: loc(mark),
                });
            }
            Event::SequenceStart(..) => self.stack.push(Frame::Seq(loc(mark), Vec::new())),
            Event::MappingStart(..) => self.stack.push(Frame::Map(loc(mark), Vec::new(), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq(at, items)) => Node {
                        kind: Kind::Seq(items),
                        at,
                    },
                    Some(Frame::Map(at, entries, _)) => Node {
                        kind: Kind::Map(entries),
                        at,
                    },
                    None => return,
                };
                self.push_node(node);
            }
            // Anchors make "which line is wrong" ambiguous; pipeline files
            // are small enough not to need them.
            Event::Alias(_) if self.error.is_none() => {
                self.error =
                    Some("YAML aliases (*name) are not supported in pipeline files".into());
                self.error_at = loc(mark);
            }
            _ => {}
        }
    }
}

/// Types a plain scalar the YAML 1.2 core-schema way.
pub fn scalar_to_json(text: &str, quoted: bool) -> serde_json::Value {
    use serde_json::Value;
    if quoted {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(i) = text.parse::<i64>() {
                Value::from(i)
            } else if let Some(f) = text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && text.chars().any(|c| c.is_ascii_digit()))
            {
                serde_json::Number::from_f64(f)
                    .map_or(Value::String(text.to_string()), Value::Number)
            } else {
                Value::String(text.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_and_point_at_values() {
        let n = parse("a: 1\nb:\n  c: [x, 'y']\n").expect("parses");
        let b = n.get("b").expect("b");
        let c = b.get("c").expect("c");
        assert_eq!(c.at.line, 3);
        match &c.kind {
            Kind::Seq(items) => {
                assert_eq!(items[1].at, Location { line: 3, col: 10 });
                assert_eq!(items[1].as_str(), Some("y"));
            }
            other => panic!("expected seq, got {other:?}"),
        }
        assert_eq!(n.key_location("b"), Some(Location { line: 2, col: 1 }));
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let err = parse("a: [1, 2\nb: 3\n").expect_err("unclosed flow seq");
        assert!(err.at.line >= 1, "{err:?}");
    }

    #[test]
    fn plain_scalars_are_typed_and_quoted_ones_are_strings() {
        assert_eq!(scalar_to_json("42", false), serde_json::json!(42));
        assert_eq!(scalar_to_json("42", true), serde_json::json!("42"));
        assert_eq!(scalar_to_json("1.5", false), serde_json::json!(1.5));
        assert_eq!(scalar_to_json("true", false), serde_json::json!(true));
        assert_eq!(scalar_to_json("~", false), serde_json::Value::Null);
        assert_eq!(
            scalar_to_json("nan-ish", false),
            serde_json::json!("nan-ish")
        );
    }
}
