//! A recursive-descent parser for the ksqlDB subset Sluice runs.
//!
//! Hand-written because `EMIT CHANGES`, `WITHIN n DAYS`, `WINDOW TUMBLING (SIZE
//! ...)` and connector `WITH` blocks are in none of sqlparser-rs's dialects,
//! and because every error here must carry a line and column.

use super::ast::*;
use super::error::{Pos, SqlError, SqlErrors};
use super::lexer::{tokenize, Tok, Token};

/// Deepest expression nesting accepted (a bound against hostile input).
const MAX_DEPTH: usize = 64;

/// Most binary operators in one statement: a chain `a + a + ...` is a tree
/// as deep as it is long, and translating or dropping it recurses that deep.
const MAX_OPERATORS: usize = 1000;

/// Statement keywords, for suggestions after a typo.
const STATEMENT_STARTS: &[&str] = &["CREATE"];
const CREATE_KINDS: &[&str] = &["SOURCE", "SINK", "STREAM", "TABLE", "FUNCTION"];
const CLAUSES: &[&str] = &[
    "FROM",
    "JOIN",
    "LEFT",
    "INNER",
    "WHERE",
    "WINDOW",
    "GROUP",
    "HAVING",
    "PARTITION",
    "EMIT",
    "WITHIN",
    "ON",
    "AS",
];
const WINDOW_KINDS: &[&str] = &["TUMBLING", "HOPPING", "SESSION"];
const UNITS: &[&str] = &[
    "MILLISECONDS",
    "SECONDS",
    "MINUTES",
    "HOURS",
    "DAYS",
    "MILLISECOND",
    "SECOND",
    "MINUTE",
    "HOUR",
    "DAY",
];

/// Words that end a select-list alias or a relation alias.
const RESERVED: &[&str] = &[
    "FROM",
    "JOIN",
    "LEFT",
    "INNER",
    "FULL",
    "RIGHT",
    "OUTER",
    "WHERE",
    "WINDOW",
    "GROUP",
    "PARTITION",
    "EMIT",
    "WITHIN",
    "ON",
    "AS",
    "HAVING",
    "AND",
    "OR",
    "NOT",
    "SELECT",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
];

/// Parses a whole file. Parsing goes on after a bad statement (from the next
/// `;`), so one mistake does not hide the next.
pub fn parse(text: &str) -> Result<Vec<Statement>, SqlErrors> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        toks: tokens,
        i: 0,
        depth: 0,
        ops: 0,
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    loop {
        while p.eat_sym(";") {}
        if p.peek() == &Tok::End {
            break;
        }
        match p.statement() {
            Ok(s) => {
                out.push(s);
                if p.peek() != &Tok::End && !p.eat_sym(";") {
                    errors.push(p.unexpected("`;` at the end of the statement"));
                    p.skip_statement();
                }
            }
            Err(e) => {
                errors.push(e);
                p.skip_statement();
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(SqlErrors(errors))
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    /// Binary operators in the current statement.
    ops: usize,
}

type R<T> = Result<T, SqlError>;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.toks[(self.i + ahead).min(self.toks.len() - 1)].tok
    }

    fn at(&self) -> Pos {
        self.toks[self.i.min(self.toks.len() - 1)].at
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn is_kw_at(&self, ahead: usize, kw: &str) -> bool {
        matches!(self.peek_at(ahead), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(x) if *x == s) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn describe(t: &Tok) -> String {
        match t {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Quoted(q) => format!("`{q}`"),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Num(n) => n.clone(),
            Tok::Sym(s) => format!("`{s}`"),
            Tok::End => "the end of the file".into(),
        }
    }

    fn unexpected(&self, expected: &str) -> SqlError {
        SqlError::new(
            self.at(),
            format!("expected {expected}, found {}", Self::describe(self.peek())),
        )
    }

    /// An error about an unexpected word, with the closest of `known`.
    fn unexpected_kw(&self, expected: &str, known: &[&str]) -> SqlError {
        let e = self.unexpected(expected);
        match self.peek() {
            Tok::Word(w) => {
                let w = w.clone();
                e.suggest(&w, known.iter().copied())
            }
            _ => e,
        }
    }

    fn expect_kw(&mut self, kw: &str) -> R<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected_kw(&format!("`{kw}`"), &[kw]))
        }
    }

    fn expect_sym(&mut self, s: &str) -> R<()> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{s}`")))
        }
    }

    fn skip_statement(&mut self) {
        while !matches!(self.peek(), Tok::End | Tok::Sym(";")) {
            self.bump();
        }
        self.eat_sym(";");
    }

    fn ident(&mut self, what: &str) -> R<Ident> {
        let at = self.at();
        match self.peek().clone() {
            Tok::Word(w) if !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&w)) => {
                self.bump();
                Ok(Ident {
                    name: w.to_lowercase(),
                    at,
                })
            }
            Tok::Quoted(q) => {
                self.bump();
                Ok(Ident { name: q, at })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn statement(&mut self) -> R<Statement> {
        self.ops = 0;
        if !self.eat_kw("CREATE") {
            return Err(self.unexpected_kw(
                "a statement (`CREATE SOURCE CONNECTOR`, `CREATE SINK CONNECTOR`, `CREATE STREAM`, `CREATE TABLE` or `CREATE FUNCTION`)",
                STATEMENT_STARTS,
            ));
        }
        if self.is_kw("OR") {
            self.bump();
            self.expect_kw("REPLACE")?;
        }
        if self.is_kw("SOURCE") || self.is_kw("SINK") {
            let source = self.is_kw("SOURCE");
            self.bump();
            if source && (self.is_kw("STREAM") || self.is_kw("TABLE")) {
                return Err(SqlError::new(
                    self.at(),
                    "`CREATE SOURCE STREAM|TABLE` is not supported; use `CREATE STREAM|TABLE ... WITH (kafka_topic = ...)`",
                ));
            }
            self.expect_kw("CONNECTOR")?;
            if self.eat_kw("IF") {
                self.expect_kw("NOT")?;
                self.expect_kw("EXISTS")?;
            }
            let name = self.ident("a connector name")?;
            self.expect_kw("WITH")?;
            let props = self.props()?;
            return Ok(Statement::Connector {
                source,
                name,
                props,
            });
        }
        if self.eat_kw("FUNCTION") {
            let name = self.ident("a function name")?;
            self.expect_kw("AS")?;
            let plugin_at = self.at();
            let Tok::Str(plugin) = self.peek().clone() else {
                return Err(self.unexpected(
                    "the function's plugin as a quoted string (`'path/to/udf.wasm'` or a plugin name)",
                ));
            };
            self.bump();
            return Ok(Statement::Function {
                name,
                plugin,
                plugin_at,
            });
        }
        let table = if self.eat_kw("STREAM") {
            false
        } else if self.eat_kw("TABLE") {
            true
        } else {
            return Err(self.unexpected_kw(
                "`SOURCE CONNECTOR`, `SINK CONNECTOR`, `STREAM`, `TABLE` or `FUNCTION` after `CREATE`",
                CREATE_KINDS,
            ));
        };
        let name = self.ident("a stream or table name")?;
        if self.eat_sym("(") {
            // Column declarations: the topic's values are JSON objects whose
            // fields are read by name, so the types are not needed.
            let mut depth = 1;
            while depth > 0 {
                match self.bump().tok {
                    Tok::Sym("(") => depth += 1,
                    Tok::Sym(")") => depth -= 1,
                    Tok::End => return Err(self.unexpected("`)` closing the column list")),
                    _ => {}
                }
            }
        }
        let with = if self.eat_kw("WITH") {
            self.props()?
        } else {
            Vec::new()
        };
        if self.eat_kw("AS") {
            let query = self.query()?;
            return Ok(Statement::CreateAs {
                table,
                name,
                with,
                query: Box::new(query),
            });
        }
        Ok(Statement::Declare { table, name, with })
    }

    fn props(&mut self) -> R<Vec<Prop>> {
        self.expect_sym("(")?;
        let mut out = Vec::new();
        loop {
            let key_at = self.at();
            let key = match self.bump().tok {
                Tok::Str(s) | Tok::Quoted(s) => s,
                Tok::Word(w) => w.to_lowercase(),
                other => {
                    return Err(SqlError::new(
                        key_at,
                        format!("expected a property name, found {}", Self::describe(&other)),
                    ))
                }
            };
            self.expect_sym("=")?;
            let value_at = self.at();
            let value = match self.bump().tok {
                Tok::Str(s) => s,
                Tok::Num(n) => n,
                Tok::Word(w)
                    if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") =>
                {
                    w.to_lowercase()
                }
                other => {
                    return Err(SqlError::new(
                        value_at,
                        format!(
                        "expected a value ('text', a number, TRUE or FALSE) for `{key}`, found {}",
                        Self::describe(&other)
                    ),
                    ))
                }
            };
            out.push(Prop {
                key,
                key_at,
                value,
                value_at,
            });
            if self.eat_sym(")") {
                return Ok(out);
            }
            self.expect_sym(",")?;
        }
    }

    fn query(&mut self) -> R<Query> {
        let at = self.at();
        self.expect_kw("SELECT")?;
        let mut items = Vec::new();
        loop {
            items.push(self.select_item()?);
            if !self.eat_sym(",") {
                break;
            }
        }
        if !self.eat_kw("FROM") {
            // `SELECT a FORM s`: `FORM` was read as a bare alias of `a`.
            if let Some(SelectItem::Expr { alias: Some(a), .. }) = items.last() {
                if super::error::closest(&a.name, ["FROM"]).is_some() {
                    return Err(SqlError::new(
                        a.at,
                        format!(
                            "expected `,` or `FROM` after the select list, found `{}`",
                            a.name
                        ),
                    )
                    .suggest(&a.name, ["FROM"]));
                }
            }
            return Err(self.unexpected_kw("`,` or `FROM` after the select list", CLAUSES));
        }
        let from = self.relation()?;
        let mut join = None;
        if self.is_kw("LEFT") || self.is_kw("INNER") || self.is_kw("JOIN") {
            join = Some(self.join()?);
        } else if self.is_kw("FULL") || self.is_kw("RIGHT") {
            return Err(SqlError::new(
                self.at(),
                "only LEFT and INNER joins are supported",
            ));
        }
        let mut window = None;
        if self.is_kw("WINDOW") {
            window = Some(self.window()?);
        }
        let filter = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut group_by = Vec::new();
        if self.eat_kw("GROUP") {
            self.expect_kw("BY")?;
            loop {
                group_by.push(self.expr()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let having = if self.eat_kw("HAVING") {
            Some(self.expr()?)
        } else {
            None
        };
        let partition_by = if self.eat_kw("PARTITION") {
            self.expect_kw("BY")?;
            Some(self.expr()?)
        } else {
            None
        };
        let mut emit_changes = true;
        if self.eat_kw("EMIT") {
            if self.eat_kw("CHANGES") {
                emit_changes = true;
            } else if self.eat_kw("FINAL") {
                emit_changes = false;
            } else {
                return Err(
                    self.unexpected_kw("`CHANGES` or `FINAL` after `EMIT`", &["CHANGES", "FINAL"])
                );
            }
        }
        if !matches!(self.peek(), Tok::Sym(";") | Tok::End) {
            return Err(self.unexpected_kw(
                "`JOIN`, `WINDOW`, `WHERE`, `GROUP BY`, `HAVING`, `PARTITION BY`, `EMIT` or `;`",
                CLAUSES,
            ));
        }
        Ok(Query {
            at,
            items,
            from,
            join,
            window,
            filter,
            group_by,
            having,
            partition_by,
            emit_changes,
        })
    }

    fn select_item(&mut self) -> R<SelectItem> {
        let at = self.at();
        if self.eat_sym("*") {
            return Ok(SelectItem::Star {
                qualifier: None,
                at,
            });
        }
        if matches!(self.peek(), Tok::Word(_) | Tok::Quoted(_))
            && matches!(self.peek_at(1), Tok::Sym("."))
            && matches!(self.peek_at(2), Tok::Sym("*"))
        {
            let q = self.ident("an alias")?;
            self.bump();
            self.bump();
            return Ok(SelectItem::Star {
                qualifier: Some(q.name),
                at,
            });
        }
        let expr = self.expr()?;
        let alias = if self.eat_kw("AS") {
            Some(self.ident("a column name after `AS`")?)
        } else if matches!(self.peek(), Tok::Word(w) if !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w)))
            || matches!(self.peek(), Tok::Quoted(_))
        {
            Some(self.ident("a column name")?)
        } else {
            None
        };
        Ok(SelectItem::Expr { expr, alias })
    }

    fn relation(&mut self) -> R<Relation> {
        let name = self.ident("a stream or table name")?;
        let alias = if self.eat_kw("AS") {
            Some(self.ident("an alias after `AS`")?)
        } else if matches!(self.peek(), Tok::Word(w) if !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w)))
        {
            Some(self.ident("an alias")?)
        } else {
            None
        };
        Ok(Relation { name, alias })
    }

    fn join(&mut self) -> R<Join> {
        let at = self.at();
        let left = if self.eat_kw("LEFT") {
            self.eat_kw("OUTER");
            true
        } else {
            self.eat_kw("INNER");
            false
        };
        self.expect_kw("JOIN")?;
        let right = self.relation()?;
        let mut within = None;
        let mut grace_ms = None;
        if self.is_kw("WITHIN") {
            let w_at = self.at();
            self.bump();
            if self.eat_sym("(") {
                return Err(SqlError::new(
                    w_at,
                    "`WITHIN (before, after)` is not supported; use one bound, `WITHIN n UNIT`",
                ));
            }
            within = Some((self.duration()?, w_at));
            if self.eat_kw("GRACE") {
                self.expect_kw("PERIOD")?;
                grace_ms = Some(self.duration()?);
            }
        }
        if !self.eat_kw("ON") {
            return Err(self.unexpected_kw("`ON` or `WITHIN` after the joined relation", CLAUSES));
        }
        let on = self.expr()?;
        Ok(Join {
            at,
            left,
            right,
            within,
            grace_ms,
            on,
        })
    }

    fn window(&mut self) -> R<Window> {
        let at = self.at();
        self.expect_kw("WINDOW")?;
        let kind = match self.peek() {
            Tok::Word(w) if WINDOW_KINDS.iter().any(|k| k.eq_ignore_ascii_case(w)) => {
                w.to_lowercase()
            }
            _ => return Err(self.unexpected_kw("`TUMBLING`, `HOPPING` or `SESSION`", WINDOW_KINDS)),
        };
        self.bump();
        self.expect_sym("(")?;
        let mut w = Window {
            at,
            kind,
            size_ms: None,
            advance_ms: None,
            gap_ms: None,
            grace_ms: None,
        };
        loop {
            if self.eat_kw("SIZE") {
                w.size_ms = Some(self.duration()?);
            } else if self.eat_kw("ADVANCE") {
                self.expect_kw("BY")?;
                w.advance_ms = Some(self.duration()?);
            } else if self.eat_kw("GRACE") {
                self.expect_kw("PERIOD")?;
                w.grace_ms = Some(self.duration()?);
            } else if self.eat_kw("RETENTION") {
                // How long a store keeps closed windows for pull queries;
                // Sluice emits and forgets them.
                self.duration()?;
            } else if w.kind == "session" && matches!(self.peek(), Tok::Num(_)) {
                w.gap_ms = Some(self.duration()?);
            } else {
                return Err(self.unexpected_kw(
                    "`SIZE n UNIT`, `ADVANCE BY n UNIT` or `GRACE PERIOD n UNIT`",
                    &["SIZE", "ADVANCE", "GRACE", "RETENTION"],
                ));
            }
            if self.eat_sym(")") {
                return Ok(w);
            }
            self.expect_sym(",")?;
        }
    }

    /// `n UNIT` in milliseconds.
    fn duration(&mut self) -> R<u64> {
        let at = self.at();
        let n: u64 = match self.bump().tok {
            Tok::Num(n) => n
                .parse()
                .map_err(|_| SqlError::new(at, format!("expected a whole number, found {n}")))?,
            other => {
                return Err(SqlError::new(
                    at,
                    format!(
                        "expected a duration like `7 DAYS`, found {}",
                        Self::describe(&other)
                    ),
                ))
            }
        };
        let unit_at = self.at();
        let unit = match self.peek() {
            Tok::Word(w) => w.to_uppercase(),
            _ => String::new(),
        };
        let ms: u64 = match unit.trim_end_matches('S') {
            "MILLISECOND" => 1,
            "SECOND" => 1_000,
            "MINUTE" => 60_000,
            "HOUR" => 3_600_000,
            "DAY" => 86_400_000,
            _ => {
                return Err(self.unexpected_kw(
                    "a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)",
                    UNITS,
                ))
            }
        };
        self.bump();
        n.checked_mul(ms)
            .ok_or_else(|| SqlError::new(unit_at, "duration too large"))
    }

    fn bin(&mut self, op: &'static str, l: Expr, r: Expr) -> R<Expr> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            return Err(SqlError::new(
                l.at,
                format!("more than {MAX_OPERATORS} operators in one statement"),
            ));
        }
        let at = l.at;
        Ok(Expr {
            kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
            at,
        })
    }

    fn nest(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SqlError::new(
                self.at(),
                format!("expression nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> R<Expr> {
        self.nest()?;
        let r = self.or();
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> R<Expr> {
        let mut l = self.and()?;
        while self.is_kw("OR") {
            self.bump();
            let r = self.and()?;
            l = self.bin("or", l, r)?;
        }
        Ok(l)
    }

    fn and(&mut self) -> R<Expr> {
        let mut l = self.not()?;
        while self.is_kw("AND") {
            self.bump();
            let r = self.not()?;
            l = self.bin("and", l, r)?;
        }
        Ok(l)
    }

    fn not(&mut self) -> R<Expr> {
        if self.is_kw("NOT") {
            let at = self.at();
            self.bump();
            self.nest()?;
            let e = self.not();
            self.depth -= 1;
            return Ok(Expr {
                kind: ExprKind::Unary("not", Box::new(e?)),
                at,
            });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> R<Expr> {
        let l = self.concat()?;
        let op = match self.peek() {
            Tok::Sym("=") => Some("="),
            Tok::Sym("!=") | Tok::Sym("<>") => Some("!="),
            Tok::Sym("<") => Some("<"),
            Tok::Sym("<=") => Some("<="),
            Tok::Sym(">") => Some(">"),
            Tok::Sym(">=") => Some(">="),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let r = self.concat()?;
            return self.bin(op, l, r);
        }
        let at = l.at;
        if self.eat_kw("IS") {
            let negated = self.eat_kw("NOT");
            self.expect_kw("NULL")?;
            return Ok(Expr {
                kind: ExprKind::IsNull(Box::new(l), negated),
                at,
            });
        }
        let negated = self.is_kw("NOT")
            && (self.is_kw_at(1, "IN") || self.is_kw_at(1, "BETWEEN") || self.is_kw_at(1, "LIKE"));
        if negated {
            self.bump();
        }
        if self.eat_kw("IN") {
            self.expect_sym("(")?;
            let mut list = Vec::new();
            loop {
                list.push(self.expr()?);
                if self.eat_sym(")") {
                    break;
                }
                self.expect_sym(",")?;
            }
            return Ok(Expr {
                kind: ExprKind::In(Box::new(l), list, negated),
                at,
            });
        }
        if self.eat_kw("BETWEEN") {
            let lo = self.concat()?;
            self.expect_kw("AND")?;
            let hi = self.concat()?;
            return Ok(Expr {
                kind: ExprKind::Between(Box::new(l), Box::new(lo), Box::new(hi), negated),
                at,
            });
        }
        if self.eat_kw("LIKE") {
            let pattern = self.concat()?;
            let mut escape = None;
            if self.eat_kw("ESCAPE") {
                let where_ = self.at();
                let e = self.concat()?;
                let mut chars = match &e.kind {
                    ExprKind::Str(s) => s.chars(),
                    _ => "".chars(),
                };
                match (chars.next(), chars.next()) {
                    (Some(c), None) => escape = Some(c),
                    _ => {
                        return Err(SqlError::new(
                            where_,
                            "expected one character in quotes after ESCAPE, e.g. ESCAPE '\\'",
                        ))
                    }
                }
            }
            return Ok(Expr {
                kind: ExprKind::Like(Box::new(l), Box::new(pattern), escape, negated),
                at,
            });
        }
        Ok(l)
    }

    fn concat(&mut self) -> R<Expr> {
        let mut l = self.additive()?;
        while self.eat_sym("||") {
            let r = self.additive()?;
            l = self.bin("||", l, r)?;
        }
        Ok(l)
    }

    fn additive(&mut self) -> R<Expr> {
        let mut l = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("+") => "+",
                Tok::Sym("-") => "-",
                _ => return Ok(l),
            };
            self.bump();
            let r = self.multiplicative()?;
            l = self.bin(op, l, r)?;
        }
    }

    fn multiplicative(&mut self) -> R<Expr> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("*") => "*",
                Tok::Sym("/") => "/",
                Tok::Sym("%") => "%",
                _ => return Ok(l),
            };
            self.bump();
            let r = self.unary()?;
            l = self.bin(op, l, r)?;
        }
    }

    fn unary(&mut self) -> R<Expr> {
        if matches!(self.peek(), Tok::Sym("-")) {
            let at = self.at();
            self.bump();
            self.nest()?;
            let e = self.unary();
            self.depth -= 1;
            return Ok(Expr {
                kind: ExprKind::Unary("-", Box::new(e?)),
                at,
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> R<Expr> {
        let at = self.at();
        let t = self.peek().clone();
        let kind = match t {
            Tok::Str(s) => {
                self.bump();
                ExprKind::Str(s)
            }
            Tok::Num(n) => {
                self.bump();
                ExprKind::Num(n)
            }
            Tok::Sym("(") => {
                self.bump();
                let e = self.expr()?;
                self.expect_sym(")")?;
                return Ok(e);
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => {
                self.bump();
                ExprKind::Bool(true)
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => {
                self.bump();
                ExprKind::Bool(false)
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => {
                self.bump();
                ExprKind::Null
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("case") => {
                self.bump();
                return self.case(at);
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("cast") => {
                self.bump();
                self.expect_sym("(")?;
                let e = self.expr()?;
                self.expect_kw("AS")?;
                let ty = self.ident("a type name")?;
                // `DECIMAL(10, 2)`, `VARCHAR(20)`: numbers, checked by type
                // where the cast is compiled.
                let mut sizes = Vec::new();
                if self.eat_sym("(") {
                    loop {
                        match self.peek().clone() {
                            Tok::Num(n) => {
                                self.bump();
                                sizes.push(n);
                            }
                            _ => return Err(self.unexpected("a size (a whole number)")),
                        }
                        if self.eat_sym(")") {
                            break;
                        }
                        self.expect_sym(",")?;
                    }
                }
                self.expect_sym(")")?;
                ExprKind::Cast(Box::new(e), ty.name, sizes)
            }
            Tok::Word(_) | Tok::Quoted(_) => {
                let first = self.ident("a column, a value or a function call")?;
                if matches!(self.peek(), Tok::Sym("(")) && matches!(t, Tok::Word(_)) {
                    self.bump();
                    let mut args = Vec::new();
                    let mut star = false;
                    if self.eat_sym("*") {
                        star = true;
                        self.expect_sym(")")?;
                    } else if !self.eat_sym(")") {
                        loop {
                            args.push(self.expr()?);
                            if self.eat_sym(")") {
                                break;
                            }
                            self.expect_sym(",")?;
                        }
                    }
                    ExprKind::Call {
                        name: first.name,
                        args,
                        star,
                    }
                } else if self.eat_sym(".") {
                    let col = self.ident("a column name after `.`")?;
                    ExprKind::Column {
                        qualifier: Some(first.name),
                        name: col.name,
                    }
                } else {
                    ExprKind::Column {
                        qualifier: None,
                        name: first.name,
                    }
                }
            }
            _ => return Err(self.unexpected("a column, a value or a function call")),
        };
        Ok(Expr { kind, at })
    }

    fn case(&mut self, at: Pos) -> R<Expr> {
        let operand = if self.is_kw("WHEN") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_kw("WHEN") {
            let c = self.expr()?;
            self.expect_kw("THEN")?;
            let v = self.expr()?;
            whens.push((c, v));
        }
        if whens.is_empty() {
            return Err(self.unexpected("`WHEN` after `CASE`"));
        }
        let otherwise = if self.eat_kw("ELSE") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_kw("END")?;
        Ok(Expr {
            kind: ExprKind::Case {
                operand,
                whens,
                otherwise,
            },
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Statement {
        let mut v = parse(text).expect("parses");
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn keywords_and_names_are_case_insensitive_and_quoted_names_are_kept() {
        let s = one("create Stream Jovens WITH (KAFKA_TOPIC='j') as select NOME, `Mixed` from CustStream emit changes");
        let Statement::CreateAs {
            name, with, query, ..
        } = s
        else {
            panic!("create as")
        };
        assert_eq!(name.name, "jovens");
        assert_eq!(with[0].key, "kafka_topic");
        assert_eq!(query.from.name.name, "custstream");
        let names: Vec<String> = query
            .items
            .iter()
            .map(|i| match i {
                SelectItem::Expr {
                    expr:
                        Expr {
                            kind: ExprKind::Column { name, .. },
                            ..
                        },
                    ..
                } => name.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["nome", "Mixed"]);
    }

    #[test]
    fn joins_windows_and_durations_parse() {
        let s = one("CREATE STREAM x AS SELECT o.a FROM l AS o INNER JOIN r s WITHIN 7 DAYS GRACE PERIOD 2 HOURS ON s.k = o.k EMIT CHANGES;");
        let Statement::CreateAs { query, .. } = s else {
            panic!()
        };
        let j = query.join.expect("join");
        assert!(!j.left);
        assert_eq!(j.within.map(|w| w.0), Some(7 * 86_400_000));
        assert_eq!(j.grace_ms, Some(7_200_000));
        assert_eq!(j.right.alias.map(|a| a.name).as_deref(), Some("s"));
        let s = one("CREATE TABLE c AS SELECT k, COUNT(*) AS n FROM s WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS) GROUP BY k EMIT FINAL;");
        let Statement::CreateAs { query, .. } = s else {
            panic!()
        };
        let w = query.window.expect("window");
        assert_eq!(
            (w.kind.as_str(), w.size_ms, w.advance_ms),
            ("hopping", Some(60_000), Some(10_000))
        );
        assert!(!query.emit_changes);
    }

    #[test]
    fn errors_carry_positions_suggestions_and_do_not_stop_at_the_first() {
        let errs = parse("CREATE STREM x WITH (a='b');\nCREATE STREAM y AS SELECT a FORM z;")
            .expect_err("two errors");
        assert_eq!(errs.0.len(), 2);
        assert_eq!((errs.0[0].at.line, errs.0[0].at.col), (1, 8));
        assert_eq!(errs.0[0].suggestion.as_deref(), Some("STREAM"));
        assert_eq!((errs.0[1].at.line, errs.0[1].at.col), (2, 29));
        assert_eq!(errs.0[1].suggestion.as_deref(), Some("FROM"));
        let errs = parse("CREATE TABLE t AS SELECT k, COUNT(*) FROM s WINDOW TUMBLNG (SIZE 1 SECOND) GROUP BY k;").expect_err("typo");
        assert_eq!(errs.0[0].suggestion.as_deref(), Some("TUMBLING"));
        let errs =
            parse("CREATE TABLE t AS SELECT k FROM s WINDOW TUMBLING (SIZE 30 SECNDS) GROUP BY k;")
                .expect_err("unit");
        assert_eq!(errs.0[0].suggestion.as_deref(), Some("SECONDS"));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = format!(
            "CREATE STREAM x AS SELECT {}1{} AS v FROM s;",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        let errs = parse(&text).expect_err("too deep");
        assert!(errs.0[0].message.contains("nested more than"), "{errs:?}");
        let text = format!(
            "CREATE STREAM x AS SELECT {}1 AS v FROM s;",
            "NOT ".repeat(10_000)
        );
        let errs = parse(&text).expect_err("too deep");
        assert!(
            errs.0[0].message.contains("nested more than 64 levels"),
            "{errs:?}"
        );
        let text = format!(
            "CREATE STREAM x AS SELECT {}1 AS v FROM s;",
            "- ".repeat(10_000)
        );
        let errs = parse(&text).expect_err("too deep");
        assert!(
            errs.0[0].message.contains("nested more than 64 levels"),
            "{errs:?}"
        );
    }
}
