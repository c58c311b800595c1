//! Tokenizer and recursive-descent parser: text → [`Node`] tree.
//!
//! Precedence, loosest first: `or`; `and`; `not`; comparisons, `in`, `is`;
//! `||`; `+ -`; `* / %`; unary `-`; values (literals, fields, calls,
//! parentheses, `case`).

use serde_json::{Number, Value};

use crate::ast::{ArithOp, CmpOp, Func, Node};
use crate::path::{scan_backquoted, Path, Segment};
use crate::ParseError;

/// How deeply sub-expressions may nest (parentheses, `not`, unary minus,
/// calls, `case`), so a hostile expression cannot overflow the stack.
const MAX_NESTING: usize = 64;
/// How deep the finished tree may be (long operator chains count too):
/// evaluation recurses once per level, or two or three frames where a level
/// switches between `eval`, `as_bool` and `num` (a test evaluates the deepest
/// mixes in a 256 KiB stack).
const MAX_TREE_DEPTH: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    Not,
    In,
    Is,
    Null,
    True,
    False,
    Case,
    When,
    Then,
    Else,
    End,
}

impl Kw {
    fn from_ident(s: &str) -> Option<Kw> {
        const ALL: [(&str, Kw); 13] = [
            ("and", Kw::And),
            ("or", Kw::Or),
            ("not", Kw::Not),
            ("in", Kw::In),
            ("is", Kw::Is),
            ("null", Kw::Null),
            ("true", Kw::True),
            ("false", Kw::False),
            ("case", Kw::Case),
            ("when", Kw::When),
            ("then", Kw::Then),
            ("else", Kw::Else),
            ("end", Kw::End),
        ];
        ALL.iter()
            .find(|(name, _)| s.eq_ignore_ascii_case(name))
            .map(|(_, kw)| *kw)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Cmp(CmpOp),
    Arith(ArithOp),
    Concat,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A field path; `plain` when it is one unquoted identifier (which may
    /// then name a function).
    Field {
        segments: Vec<Segment>,
        plain: bool,
    },
    Str(String),
    Num(Number),
    LParen,
    RParen,
    Comma,
    Op(Op),
    Kw(Kw),
    Eof,
}

#[derive(Clone, Debug)]
struct Token<'s> {
    tok: Tok,
    /// 1-based column (in characters) of the token's first character.
    col: usize,
    /// The token's source text (empty at the end).
    text: &'s str,
}

impl Token<'_> {
    /// The token as quoted in messages (string literals carry their quotes).
    fn quoted(&self) -> String {
        match self.tok {
            Tok::Str(_) => self.text.to_string(),
            _ => format!("'{}'", self.text),
        }
    }

    fn describe(&self) -> String {
        match self.tok {
            Tok::Eof => "the end of the expression".to_string(),
            _ => self.quoted(),
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    col: usize,
}

impl<'s> Lexer<'s> {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src.get(self.pos..)?.chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        self.col += 1;
        Some(c)
    }

    /// Advances over `n` bytes of ASCII.
    fn skip_ascii(&mut self, n: usize) {
        self.pos += n;
        self.col += n;
    }

    /// Advances over `s` (already matched at the current position).
    fn skip_str(&mut self, s: &str) {
        self.pos += s.len();
        self.col += s.chars().count();
    }

    fn err(col: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(col, message.into())
    }

    fn tokens(mut self) -> Result<Vec<Token<'s>>, ParseError> {
        let mut out = Vec::new();
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
            let start = self.pos;
            let col = self.col;
            let Some(c) = self.peek() else {
                out.push(Token {
                    tok: Tok::Eof,
                    col,
                    text: "",
                });
                return Ok(out);
            };
            let tok = match c {
                '(' => self.single(Tok::LParen),
                ')' => self.single(Tok::RParen),
                ',' => self.single(Tok::Comma),
                '+' => self.single(Tok::Op(Op::Arith(ArithOp::Add))),
                '-' => self.single(Tok::Op(Op::Arith(ArithOp::Sub))),
                '*' => self.single(Tok::Op(Op::Arith(ArithOp::Mul))),
                '/' => self.single(Tok::Op(Op::Arith(ArithOp::Div))),
                '%' => self.single(Tok::Op(Op::Arith(ArithOp::Rem))),
                '=' => {
                    let n = if self.peek2() == Some('=') { 2 } else { 1 };
                    self.skip_ascii(n);
                    Tok::Op(Op::Cmp(CmpOp::Eq))
                }
                '!' => {
                    if self.peek2() != Some('=') {
                        return Err(Self::err(
                            col,
                            "unexpected '!'; did you mean '!=' or 'not'?",
                        ));
                    }
                    self.skip_ascii(2);
                    Tok::Op(Op::Cmp(CmpOp::Ne))
                }
                '<' => match self.peek2() {
                    Some('=') => self.double(Tok::Op(Op::Cmp(CmpOp::Le))),
                    Some('>') => self.double(Tok::Op(Op::Cmp(CmpOp::Ne))),
                    _ => self.single(Tok::Op(Op::Cmp(CmpOp::Lt))),
                },
                '>' => match self.peek2() {
                    Some('=') => self.double(Tok::Op(Op::Cmp(CmpOp::Ge))),
                    _ => self.single(Tok::Op(Op::Cmp(CmpOp::Gt))),
                },
                '|' => {
                    if self.peek2() != Some('|') {
                        return Err(Self::err(col, "unexpected '|'; did you mean '||'?"));
                    }
                    self.double(Tok::Op(Op::Concat))
                }
                '\'' | '"' => self.string(c)?,
                c if c.is_ascii_digit() => self.number()?,
                '.' if self.peek2().is_some_and(|d| d.is_ascii_digit()) => self.number()?,
                '`' => self.field()?,
                c if is_ident_start(c) => self.field()?,
                other => {
                    return Err(Self::err(col, format!("unexpected character '{other}'")));
                }
            };
            let text = self.src.get(start..self.pos).unwrap_or("");
            out.push(Token { tok, col, text });
        }
    }

    fn single(&mut self, tok: Tok) -> Tok {
        self.skip_ascii(1);
        tok
    }

    fn double(&mut self, tok: Tok) -> Tok {
        self.skip_ascii(2);
        tok
    }

    /// A quoted string; the quote character is escaped by doubling it.
    fn string(&mut self, quote: char) -> Result<Tok, ParseError> {
        let col = self.col;
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(Self::err(col, "unterminated string starting"));
                }
                Some(c) if c == quote => {
                    if self.peek() == Some(quote) {
                        self.bump();
                        value.push(quote);
                    } else {
                        return Ok(Tok::Str(value));
                    }
                }
                Some(c) => value.push(c),
            }
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
    }

    fn number(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let col = self.col;
        self.digits();
        let mut float = false;
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.bump();
            self.digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let mut ahead = self.src.get(self.pos + 1..).unwrap_or("").chars();
            let mut next = ahead.next();
            if matches!(next, Some('+' | '-')) {
                next = ahead.next();
            }
            if next.is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                self.bump();
                if matches!(self.peek(), Some('+' | '-')) {
                    self.bump();
                }
                self.digits();
            }
        }
        if let Some(c) = self.peek().filter(|&c| is_ident_continue(c) || c == '.') {
            return Err(Self::err(
                self.col,
                format!("unexpected '{c}' after the number"),
            ));
        }
        let text = self.src.get(start..self.pos).unwrap_or("");
        let number = if float {
            None
        } else if let Ok(i) = text.parse::<i64>() {
            Some(Number::from(i))
        } else if let Ok(u) = text.parse::<u64>() {
            Some(Number::from(u))
        } else {
            None
        };
        let number = match number {
            Some(n) => n,
            None => text
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .ok_or_else(|| Self::err(col, format!("number {text} is out of range")))?,
        };
        Ok(Tok::Num(number))
    }

    fn segment(&mut self) -> Result<(Segment, bool), ParseError> {
        let col = self.col;
        if self.peek() == Some('`') {
            let rest = self.src.get(self.pos + 1..).unwrap_or("");
            let Some((name, used)) = scan_backquoted(rest) else {
                return Err(Self::err(col, "unterminated backquoted name starting"));
            };
            if name.is_empty() {
                return Err(Self::err(col, "empty backquoted name"));
            }
            let seg = Segment::new(&name);
            let consumed = &self.src[self.pos..self.pos + 1 + used];
            self.skip_str(consumed);
            Ok((seg, false))
        } else {
            let start = self.pos;
            while self.peek().is_some_and(is_ident_continue) {
                self.bump();
            }
            Ok((Segment::new(&self.src[start..self.pos]), true))
        }
    }

    fn field(&mut self) -> Result<Tok, ParseError> {
        let (first, unquoted) = self.segment()?;
        let mut segments = vec![first];
        while self.peek() == Some('.')
            && self
                .peek2()
                .is_some_and(|c| c == '`' || is_ident_continue(c))
        {
            self.bump();
            segments.push(self.segment()?.0);
        }
        let plain = unquoted && segments.len() == 1;
        if plain {
            if let Some(kw) = segments.first().and_then(|s| Kw::from_ident(&s.name)) {
                return Ok(Tok::Kw(kw));
            }
        }
        Ok(Tok::Field { segments, plain })
    }
}

/// The tree, and the top-level fields it reads (each once, in order of
/// appearance), which its field nodes' slots index.
pub(crate) fn parse(src: &str, udfs: &[String]) -> Result<(Node, Vec<Box<str>>), ParseError> {
    let toks = Lexer {
        src,
        pos: 0,
        col: 1,
    }
    .tokens()?;
    let mut parser = Parser {
        toks,
        pos: 0,
        nesting: 0,
        udfs,
        fields: Vec::new(),
    };
    if parser.peek().tok == Tok::Eof {
        return Err(ParseError::new(1, "empty expression".to_string()));
    }
    let node = parser.parse_or()?;
    let next = parser.peek();
    if next.tok != Tok::Eof {
        let hint = if next.tok == Tok::RParen {
            "; it closes no '('".to_string()
        } else {
            "; expected an operator, 'and', 'or' or the end of the expression".to_string()
        };
        return Err(ParseError::new(
            next.col,
            format!("unexpected {}{hint}", next.describe()),
        ));
    }
    if node.depth() > MAX_TREE_DEPTH {
        return Err(ParseError::new(
            1,
            format!("expression is too deep (more than {MAX_TREE_DEPTH} levels of operators)"),
        ));
    }
    Ok((node, parser.fields))
}

struct Parser<'s> {
    toks: Vec<Token<'s>>,
    pos: usize,
    nesting: usize,
    /// Names of the pipeline's user-defined functions (lowercase).
    udfs: &'s [String],
    /// The first names of the field paths read so far, each once, in order
    /// of appearance: the expression's top-level fields.
    fields: Vec<Box<str>>,
}

type PResult = Result<Node, ParseError>;

impl<'s> Parser<'s> {
    /// The index of `path`'s first name among the top-level fields, added
    /// when new: what a field node evaluates against loaded fields with.
    fn slot_of(&mut self, path: &Path) -> usize {
        let Some(first) = path.names().next() else {
            return usize::MAX;
        };
        match self.fields.iter().position(|f| **f == *first) {
            Some(i) => i,
            None => {
                self.fields.push(first.into());
                self.fields.len() - 1
            }
        }
    }

    fn peek(&self) -> &Token<'s> {
        // The token list always ends with Eof, and `bump` never passes it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.toks[(self.pos + ahead).min(self.toks.len() - 1)].tok
    }

    /// The last consumed token (the first one if none was consumed yet).
    fn prev_tok(&self) -> Token<'s> {
        self.toks[self.pos.saturating_sub(1).min(self.toks.len() - 1)].clone()
    }

    fn bump(&mut self) -> Token<'s> {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn eat_kw(&mut self, kw: Kw) -> bool {
        if self.peek().tok == Tok::Kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Error at the next token: "expected X after 'prev'[, found Y]".
    fn expected(&self, what: &str, after: &Token<'_>) -> ParseError {
        let next = self.peek();
        let found = if next.tok == Tok::Eof {
            String::new()
        } else {
            format!(" but found {}", next.describe())
        };
        ParseError::new(
            next.col,
            format!("expected {what} after {}{found}", after.quoted()),
        )
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(ParseError::new(
                self.peek().col,
                format!("expression nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> PResult {
        self.enter()?;
        let mut left = self.parse_and()?;
        while self.eat_kw(Kw::Or) {
            let right = self.parse_and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        self.nesting -= 1;
        Ok(left)
    }

    fn parse_and(&mut self) -> PResult {
        let mut left = self.parse_not()?;
        while self.eat_kw(Kw::And) {
            let right = self.parse_not()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_not(&mut self) -> PResult {
        if self.eat_kw(Kw::Not) {
            self.enter()?;
            let inner = self.parse_not()?;
            self.nesting -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.parse_predicate()
    }

    fn parse_predicate(&mut self) -> PResult {
        let left = self.parse_concat()?;
        let mut node = match self.peek().tok {
            Tok::Op(Op::Cmp(op)) => {
                self.bump();
                let right = self.parse_concat()?;
                Node::Cmp(op, Box::new(left), Box::new(right))
            }
            Tok::Kw(Kw::In) => {
                let in_tok = self.bump();
                self.parse_in_list(left, false, &in_tok)?
            }
            Tok::Kw(Kw::Not) if *self.peek_at(1) == Tok::Kw(Kw::In) => {
                self.bump();
                let in_tok = self.bump();
                self.parse_in_list(left, true, &in_tok)?
            }
            _ => left,
        };
        // `is [not] null` applies to everything before it, like in SQL:
        // `a > 1 is null` is `(a > 1) is null`.
        while self.peek().tok == Tok::Kw(Kw::Is) {
            let is_tok = self.bump();
            let negated = self.eat_kw(Kw::Not);
            if !self.eat_kw(Kw::Null) {
                let (what, after) = if negated {
                    let after = Token {
                        tok: Tok::Kw(Kw::Not),
                        col: is_tok.col,
                        text: "is not",
                    };
                    ("'null'", after)
                } else {
                    ("'null' or 'not null'", is_tok)
                };
                return Err(self.expected(what, &after));
            }
            node = Node::IsNull {
                value: Box::new(node),
                negated,
            };
        }
        Ok(node)
    }

    fn parse_in_list(&mut self, value: Node, negated: bool, in_tok: &Token<'_>) -> PResult {
        if self.peek().tok != Tok::LParen {
            return Err(self.expected("'(' and a list of values", in_tok));
        }
        let open = self.bump();
        let list = self.parse_list(&open)?;
        Ok(Node::In {
            value: Box::new(value),
            list: list.into(),
            negated,
        })
    }

    /// Comma-separated expressions up to a closing `)`; `open` was consumed.
    fn parse_list(&mut self, open: &Token<'_>) -> Result<Vec<Node>, ParseError> {
        let mut items = Vec::new();
        loop {
            items.push(self.parse_or()?);
            match self.peek().tok {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RParen => {
                    self.bump();
                    return Ok(items);
                }
                _ => {
                    let next = self.peek();
                    return Err(ParseError::new(
                        next.col,
                        format!(
                            "expected ',' or ')' to close the '(' at column {} but found {}",
                            open.col,
                            next.describe()
                        ),
                    ));
                }
            }
        }
    }

    fn parse_concat(&mut self) -> PResult {
        let mut left = self.parse_additive()?;
        while self.peek().tok == Tok::Op(Op::Concat) {
            self.bump();
            let right = self.parse_additive()?;
            left = Node::Concat(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_additive(&mut self) -> PResult {
        let mut left = self.parse_multiplicative()?;
        while let Tok::Op(Op::Arith(op @ (ArithOp::Add | ArithOp::Sub))) = self.peek().tok {
            self.bump();
            let right = self.parse_multiplicative()?;
            left = Node::Arith(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_multiplicative(&mut self) -> PResult {
        let mut left = self.parse_unary()?;
        while let Tok::Op(Op::Arith(op @ (ArithOp::Mul | ArithOp::Div | ArithOp::Rem))) =
            self.peek().tok
        {
            self.bump();
            let right = self.parse_unary()?;
            left = Node::Arith(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> PResult {
        if self.peek().tok == Tok::Op(Op::Arith(ArithOp::Sub)) {
            self.bump();
            self.enter()?;
            let inner = self.parse_unary()?;
            self.nesting -= 1;
            // Fold negative number literals.
            if let Node::Lit(Value::Number(n)) = &inner {
                if let Some(v) = crate::eval::negate(n) {
                    return Ok(Node::Lit(v));
                }
            }
            return Ok(Node::Neg(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> PResult {
        let prev = (self.pos > 0).then(|| self.prev_tok());
        let tok = self.peek().clone();
        match tok.tok {
            Tok::Num(n) => {
                self.bump();
                Ok(Node::Lit(Value::Number(n)))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Node::Lit(Value::String(s)))
            }
            Tok::Kw(Kw::True) => {
                self.bump();
                Ok(Node::Lit(Value::Bool(true)))
            }
            Tok::Kw(Kw::False) => {
                self.bump();
                Ok(Node::Lit(Value::Bool(false)))
            }
            Tok::Kw(Kw::Null) => {
                self.bump();
                Ok(Node::Lit(Value::Null))
            }
            Tok::Kw(Kw::Case) => {
                self.bump();
                self.parse_case(&tok)
            }
            Tok::LParen => {
                self.bump();
                let inner = self.parse_or()?;
                if self.peek().tok != Tok::RParen {
                    let next = self.peek();
                    return Err(ParseError::new(
                        next.col,
                        format!(
                            "expected ')' to close the '(' at column {} but found {}",
                            tok.col,
                            next.describe()
                        ),
                    ));
                }
                self.bump();
                Ok(inner)
            }
            Tok::Field {
                ref segments,
                plain,
            } => {
                self.bump();
                if plain && self.peek().tok == Tok::LParen {
                    return self.parse_call(&tok);
                }
                let path = Path::from_segments(segments.clone());
                let slot = self.slot_of(&path);
                Ok(Node::Field(path, slot))
            }
            _ => match prev {
                Some(prev) => Err(self.expected("a value", &prev)),
                None => Err(ParseError::new(
                    tok.col,
                    format!("expected a value but found {}", tok.describe()),
                )),
            },
        }
    }

    fn parse_call(&mut self, name: &Token<'_>) -> PResult {
        let Some(func) = Func::from_name(name.text) else {
            if let Some(udf) = self.udfs.iter().find(|u| u.eq_ignore_ascii_case(name.text)) {
                // Arity is the function's own business: it sees the
                // arguments and may refuse them per event.
                let open = self.bump();
                self.enter()?;
                let args = if self.peek().tok == Tok::RParen {
                    self.bump();
                    Vec::new()
                } else {
                    self.parse_list(&open)?
                };
                self.nesting -= 1;
                return Ok(Node::Udf(udf.to_ascii_lowercase().into(), args.into()));
            }
            return Err(unknown_function(name, self.udfs));
        };
        let open = self.bump();
        self.enter()?;
        let args = if self.peek().tok == Tok::RParen {
            self.bump();
            Vec::new()
        } else {
            self.parse_list(&open)?
        };
        self.nesting -= 1;
        let (min, max) = func.arity();
        if args.len() < min || max.is_some_and(|max| args.len() > max) {
            let takes = match max {
                Some(max) if max == min => format!("{min}"),
                Some(max) => format!("{min} to {max}"),
                None => format!("at least {min}"),
            };
            let plural = if min == 1 && matches!(max, Some(1) | None) {
                ""
            } else {
                "s"
            };
            return Err(ParseError::new(
                name.col,
                format!(
                    "function '{}' takes {takes} argument{plural}, found {}",
                    func.name(),
                    args.len()
                ),
            ));
        }
        Ok(Node::Call(func, args.into()))
    }

    fn parse_case(&mut self, case_tok: &Token<'_>) -> PResult {
        self.enter()?;
        let operand = if self.peek().tok == Tok::Kw(Kw::When) {
            None
        } else {
            Some(Box::new(self.parse_or()?))
        };
        let mut whens = Vec::new();
        loop {
            if !self.eat_kw(Kw::When) {
                if whens.is_empty() {
                    let after = if operand.is_some() {
                        self.prev_tok()
                    } else {
                        case_tok.clone()
                    };
                    return Err(self.expected("'when'", &after));
                }
                break;
            }
            let cond = self.parse_or()?;
            if !self.eat_kw(Kw::Then) {
                let next = self.peek();
                let found = if next.tok == Tok::Eof {
                    String::new()
                } else {
                    format!(" but found {}", next.describe())
                };
                return Err(ParseError::new(
                    next.col,
                    format!("expected 'then' after the 'when' condition{found}"),
                ));
            }
            let then = self.parse_or()?;
            whens.push((cond, then));
        }
        let otherwise = if self.eat_kw(Kw::Else) {
            Some(Box::new(self.parse_or()?))
        } else {
            None
        };
        if !self.eat_kw(Kw::End) {
            let next = self.peek();
            return Err(ParseError::new(
                next.col,
                format!(
                    "expected 'when', 'else' or 'end' to finish the 'case' at column {} but found {}",
                    case_tok.col,
                    next.describe()
                ),
            ));
        }
        self.nesting -= 1;
        Ok(Node::Case {
            operand,
            whens: whens.into(),
            otherwise,
        })
    }
}

/// "unknown function 'x' (known: ...)", with the closest known name (a
/// built-in or one of the pipeline's UDFs) when one is close.
fn unknown_function(name: &Token<'_>, udfs: &[String]) -> ParseError {
    let wanted = name.text.to_ascii_lowercase();
    let mut known: Vec<String> = Func::ALL_NAMES.iter().map(|n| n.to_string()).collect();
    let udf_list = if udfs.is_empty() {
        String::new()
    } else {
        format!("; user-defined: {}", udfs.join(", "))
    };
    known.extend(udfs.iter().map(|u| u.to_ascii_lowercase()));
    let suggestion = known
        .iter()
        .map(|k| (strsim::levenshtein(&wanted, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("; did you mean '{k}'?"))
        .unwrap_or_default();
    ParseError::new(
        name.col,
        format!(
            "unknown function '{}' (known: {}{udf_list}){suggestion}",
            name.text,
            Func::ALL_NAMES.join(", "),
        ),
    )
}
