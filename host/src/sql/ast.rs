//! The statements as parsed, before names are resolved.

use super::error::Pos;

/// A name: unquoted names are lower-cased (case-insensitive, as in
/// ksqlDB), quoted ones are kept as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub at: Pos,
}

/// A `WITH (...)` property.
#[derive(Debug, Clone, PartialEq)]
pub struct Prop {
    /// The key, lower-cased when written bare.
    pub key: String,
    /// Where the key is written.
    pub key_at: Pos,
    /// The value as text (strings unquoted, numbers and booleans as written).
    pub value: String,
    /// Where the value is written.
    pub value_at: Pos,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE SOURCE|SINK CONNECTOR name WITH (...)`.
    Connector {
        /// `SOURCE` rather than `SINK`.
        source: bool,
        /// Its name.
        name: Ident,
        /// Its properties.
        props: Vec<Prop>,
    },
    /// `CREATE STREAM|TABLE name WITH (...)` over an existing topic.
    Declare {
        /// `TABLE` rather than `STREAM`.
        table: bool,
        /// Its name.
        name: Ident,
        /// Its properties.
        with: Vec<Prop>,
    },
    /// `CREATE FUNCTION name AS 'path-or-plugin'`: a user-defined function
    /// (a component of the `udf` world).
    Function {
        /// Its name, lowercase (calls are case-insensitive).
        name: Ident,
        /// The plugin: a `.wasm` path or a plugin name.
        plugin: String,
        /// Where the quoted plugin is written.
        plugin_at: Pos,
    },
    /// `CREATE STREAM|TABLE name [WITH (...)] AS SELECT ...`.
    CreateAs {
        /// `TABLE` rather than `STREAM`.
        table: bool,
        /// Its name.
        name: Ident,
        /// Its properties.
        with: Vec<Prop>,
        /// The query.
        query: Box<Query>,
    },
}

/// `SELECT ... FROM ... [JOIN ...] [WINDOW ...] [WHERE ...] [GROUP BY ...]
/// [HAVING ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Where `SELECT` is.
    pub at: Pos,
    /// The select list.
    pub items: Vec<SelectItem>,
    /// The first relation.
    pub from: Relation,
    /// At most one join.
    pub join: Option<Join>,
    /// `WINDOW ...`.
    pub window: Option<Window>,
    /// `WHERE ...`.
    pub filter: Option<Expr>,
    /// `GROUP BY ...`.
    pub group_by: Vec<Expr>,
    /// `HAVING ...`.
    pub having: Option<Expr>,
    /// `PARTITION BY ...`.
    pub partition_by: Option<Expr>,
    /// `EMIT CHANGES` (true) or `EMIT FINAL` (false).
    pub emit_changes: bool,
}

/// One entry of the select list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*` or `alias.*`.
    Star {
        /// The qualifier of `alias.*`.
        qualifier: Option<String>,
        /// Where it is written.
        at: Pos,
    },
    /// An expression with an optional `AS name`.
    Expr {
        /// The expression.
        expr: Expr,
        /// Its name.
        alias: Option<Ident>,
    },
}

/// A stream or table in `FROM` or `JOIN`, with its alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// The stream or table.
    pub name: Ident,
    /// `AS alias` or a bare alias.
    pub alias: Option<Ident>,
}

/// `LEFT|INNER JOIN rel [WITHIN n UNIT [GRACE PERIOD n UNIT]] ON cond`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// Where the join starts.
    pub at: Pos,
    /// LEFT rather than INNER.
    pub left: bool,
    /// The joined relation.
    pub right: Relation,
    /// `WITHIN`, in ms, and where it is written.
    pub within: Option<(u64, Pos)>,
    /// `GRACE PERIOD`, in ms.
    pub grace_ms: Option<u64>,
    /// The condition.
    pub on: Expr,
}

/// `WINDOW TUMBLING|HOPPING|SESSION (...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Where `WINDOW` is.
    pub at: Pos,
    /// `tumbling`, `hopping` or `session`.
    pub kind: String,
    /// `SIZE`, in ms.
    pub size_ms: Option<u64>,
    /// `ADVANCE BY`, in ms.
    pub advance_ms: Option<u64>,
    /// A session's gap, in ms.
    pub gap_ms: Option<u64>,
    /// `GRACE PERIOD`, in ms.
    pub grace_ms: Option<u64>,
}

/// An expression and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it starts.
    pub at: Pos,
}

/// Expression forms.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `[qualifier.]name`.
    Column {
        /// The alias or relation name before the dot.
        qualifier: Option<String>,
        /// The column.
        name: String,
    },
    /// `'text'`.
    Str(String),
    /// A number as written.
    Num(String),
    /// `TRUE` / `FALSE`.
    Bool(bool),
    /// `NULL`.
    Null,
    /// `-e` or `NOT e`.
    Unary(&'static str, Box<Expr>),
    /// `l op r`; `op` is the expression language's spelling.
    Binary(&'static str, Box<Expr>, Box<Expr>),
    /// `e IS [NOT] NULL`.
    IsNull(Box<Expr>, bool),
    /// `e [NOT] IN (list)`.
    In(Box<Expr>, Vec<Expr>, bool),
    /// `e [NOT] LIKE pattern [ESCAPE 'c']`.
    Like(Box<Expr>, Box<Expr>, Option<char>, bool),
    /// `e [NOT] BETWEEN lo AND hi`.
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`.
    Case {
        /// `CASE x WHEN v ...`.
        operand: Option<Box<Expr>>,
        /// The branches.
        whens: Vec<(Expr, Expr)>,
        /// The `ELSE` value.
        otherwise: Option<Box<Expr>>,
    },
    /// `f(args)` or `f(*)`.
    Call {
        /// Lower-cased function name.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
        /// `COUNT(*)`.
        star: bool,
    },
    /// `CAST(e AS type)`.
    /// `CAST(e AS type[(sizes)])`.
    Cast(Box<Expr>, String, Vec<String>),
}
