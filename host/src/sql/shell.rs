//! The interactive shell's own statements (`SHOW`, `DESCRIBE`, `PRINT`,
//! push queries, ...), told apart from the statements the compiler reads.
//! Only the classification lives here; `cli::sql_shell` does the I/O.

use super::error::{closest, Pos, SqlError, SqlErrors};
use super::lexer::{tokenize, Tok, Token};

/// What `SHOW`/`LIST` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `SHOW STREAMS`.
    Streams,
    /// `SHOW TABLES`.
    Tables,
    /// `SHOW CONNECTORS`.
    Connectors,
    /// `SHOW TOPICS`.
    Topics,
}

/// One statement typed into the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A statement for the compiler (`CREATE ...`), kept in the session.
    Create(String),
    /// `SHOW|LIST STREAMS|TABLES|CONNECTORS|TOPICS`.
    Show(Listing),
    /// `DESCRIBE name`.
    Describe(String),
    /// `PRINT topic [FROM BEGINNING] [LIMIT n]`.
    Print {
        /// The topic.
        topic: String,
        /// Rows to print before stopping.
        limit: Option<u64>,
    },
    /// `SELECT ... EMIT CHANGES [LIMIT n]`: `query` is the text without
    /// `LIMIT` and the final `;`.
    Select {
        /// The query text.
        query: String,
        /// Rows to print before stopping.
        limit: Option<u64>,
    },
    /// `DROP STREAM|TABLE|CONNECTOR name`: forgets its statement.
    Drop(String),
    /// `RUN SCRIPT 'file'`.
    RunScript(String),
    /// `SAVE 'file'`: writes the session's statements to a file.
    Save(String),
    /// `HELP`.
    Help,
    /// `EXIT` / `QUIT`.
    Exit,
}

const VERBS: &[&str] = &[
    "CREATE", "SHOW", "LIST", "DESCRIBE", "PRINT", "SELECT", "DROP", "RUN", "SAVE", "HELP", "EXIT",
    "QUIT",
];

/// True once `buffer` holds a whole statement: its last token is `;` (a
/// `;` inside a string or comment does not count), or it is a one-word
/// command that needs none (`exit`, `help`, `quit`).
pub fn complete(buffer: &str) -> bool {
    match tokenize(buffer) {
        Ok(toks) => {
            let words: Vec<&Token> = toks.iter().filter(|t| t.tok != Tok::End).collect();
            match words.as_slice() {
                [] => false,
                [one] => {
                    matches!(&one.tok, Tok::Word(w) if ["EXIT", "QUIT", "HELP"].iter().any(|k| k.eq_ignore_ascii_case(w)))
                        || one.tok == Tok::Sym(";")
                }
                [.., last] => last.tok == Tok::Sym(";"),
            }
        }
        // An unterminated string or comment: more lines are coming.
        Err(_) => false,
    }
}

/// Splits a file into its statements, each with its `;`.
pub fn split_statements(text: &str) -> Result<Vec<String>, SqlErrors> {
    let toks = tokenize(text)?;
    let mut out = Vec::new();
    let mut start = 0;
    for t in &toks {
        if t.tok == Tok::Sym(";") {
            let end = offset(text, t.at) + 1;
            let s = text[start..end].trim();
            if s != ";" {
                out.push(s.to_string());
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() && tokenize(rest).is_ok_and(|t| t.len() > 1) {
        out.push(format!("{rest};"));
    }
    Ok(out)
}

/// Classifies one whole statement.
pub fn classify(text: &str) -> Result<Command, SqlErrors> {
    let toks = tokenize(text)?;
    let toks: Vec<&Token> = toks
        .iter()
        .filter(|t| t.tok != Tok::End && t.tok != Tok::Sym(";"))
        .collect();
    let Some(first) = toks.first() else {
        return Err(err(Pos { line: 1, col: 1 }, "empty statement"));
    };
    let word = |i: usize| -> Option<String> {
        match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Word(w)) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    };
    let name = |i: usize| -> Option<String> {
        match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Word(w)) => Some(w.to_lowercase()),
            Some(Tok::Quoted(q)) => Some(q.clone()),
            _ => None,
        }
    };
    let string = |i: usize| -> Option<String> {
        match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Str(s)) => Some(s.clone()),
            _ => None,
        }
    };
    let end = |i: usize, what: &str| -> Result<(), SqlErrors> {
        match toks.get(i) {
            None => Ok(()),
            Some(t) => Err(err(t.at, format!("unexpected text after {what}"))),
        }
    };
    let verb = word(0).unwrap_or_default();
    match verb.as_str() {
        "CREATE" => Ok(Command::Create(text.trim().to_string())),
        "SHOW" | "LIST" => {
            let what = match word(1).as_deref() {
                Some("STREAMS") => Listing::Streams,
                Some("TABLES") => Listing::Tables,
                Some("CONNECTORS") => Listing::Connectors,
                Some("TOPICS") => Listing::Topics,
                _ => {
                    let at = toks.get(1).map_or(first.at, |t| t.at);
                    return Err(err(
                        at,
                        format!("expected STREAMS, TABLES, CONNECTORS or TOPICS after {verb}"),
                    ));
                }
            };
            end(2, &format!("{verb} {}", word(1).unwrap_or_default()))?;
            Ok(Command::Show(what))
        }
        "DESCRIBE" => {
            let n = name(1).ok_or_else(|| {
                err(
                    first.at,
                    "expected the name of a stream or table after DESCRIBE",
                )
            })?;
            end(2, "the name")?;
            Ok(Command::Describe(n))
        }
        "PRINT" => {
            let topic = string(1)
                .or_else(|| name(1))
                .ok_or_else(|| err(first.at, "expected a topic after PRINT (`PRINT 'orders';`)"))?;
            let mut i = 2;
            if word(i).as_deref() == Some("FROM") && word(i + 1).as_deref() == Some("BEGINNING") {
                // Every shell query reads its sources from the start.
                i += 2;
            }
            let limit = limit_at(&toks, i)?;
            end(if limit.is_some() { i + 2 } else { i }, "PRINT")?;
            Ok(Command::Print { topic, limit })
        }
        "SELECT" => select(text, &toks),
        "DROP" => {
            let kind = word(1).unwrap_or_default();
            if !["STREAM", "TABLE", "CONNECTOR"].contains(&kind.as_str()) {
                let at = toks.get(1).map_or(first.at, |t| t.at);
                return Err(err(at, "expected STREAM, TABLE or CONNECTOR after DROP"));
            }
            let mut i = 2;
            if word(2).as_deref() == Some("IF") && word(3).as_deref() == Some("EXISTS") {
                i = 4;
            }
            let n = name(i)
                .ok_or_else(|| err(first.at, format!("expected a name after DROP {kind}")))?;
            end(i + 1, "the name")?;
            Ok(Command::Drop(n))
        }
        "RUN" => {
            if word(1).as_deref() != Some("SCRIPT") {
                return Err(err(first.at, "expected `RUN SCRIPT 'file.sql'`"));
            }
            let f = string(2).ok_or_else(|| err(first.at, "expected `RUN SCRIPT 'file.sql'`"))?;
            end(3, "the file name")?;
            Ok(Command::RunScript(f))
        }
        "SAVE" => {
            let f = string(1).ok_or_else(|| err(first.at, "expected `SAVE 'file.sql'`"))?;
            end(2, "the file name")?;
            Ok(Command::Save(f))
        }
        "HELP" => Ok(Command::Help),
        "EXIT" | "QUIT" => Ok(Command::Exit),
        _ => {
            let written = match &first.tok {
                Tok::Word(w) => w.clone(),
                _ => String::new(),
            };
            let mut e = SqlError::new(
                first.at,
                format!(
                    "expected a statement: {} (HELP; lists them)",
                    VERBS.join(", ")
                ),
            );
            e.suggestion = closest(&written.to_ascii_uppercase(), VERBS.iter().copied());
            Err(SqlErrors(vec![e]))
        }
    }
}

/// A push query: `SELECT ... EMIT CHANGES [LIMIT n]`. Sluice has no pull
/// queries (tables are kept for lookups), so `EMIT CHANGES` is required, as
/// ksqlDB requires it for queries over streams.
fn select(text: &str, toks: &[&Token]) -> Result<Command, SqlErrors> {
    let n = toks.len();
    let is_word = |t: &Token, w: &str| matches!(&t.tok, Tok::Word(x) if x.eq_ignore_ascii_case(w));
    let (limit, body_end) = if n >= 2 && is_word(toks[n - 2], "LIMIT") {
        (limit_at(toks, n - 2)?, n - 2)
    } else {
        (None, n)
    };
    let emits = body_end >= 2
        && is_word(toks[body_end - 2], "EMIT")
        && is_word(toks[body_end - 1], "CHANGES");
    if !emits {
        let at = toks
            .get(body_end.saturating_sub(1))
            .map_or(Pos { line: 1, col: 1 }, |t| t.at);
        return Err(err(
            at,
            "a query needs EMIT CHANGES: Sluice runs push queries, which print rows as they come until LIMIT or Ctrl-C (pull queries are not supported)",
        ));
    }
    // The query text ends where `LIMIT` starts (or before the final `;`).
    let cut = match toks.get(body_end) {
        Some(t) => offset(text, t.at),
        None => text.trim_end().trim_end_matches(';').len(),
    };
    let query = text[..cut.min(text.len())].trim().to_string();
    Ok(Command::Select { query, limit })
}

/// `LIMIT n` at `i`, if there.
fn limit_at(toks: &[&Token], i: usize) -> Result<Option<u64>, SqlErrors> {
    match toks.get(i).map(|t| &t.tok) {
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIMIT") => match toks.get(i + 1) {
            Some(Token {
                tok: Tok::Num(n), ..
            }) => n
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .map(Some)
                .ok_or_else(|| err(toks[i + 1].at, "LIMIT takes a whole number above 0")),
            _ => Err(err(toks[i].at, "LIMIT takes a whole number above 0")),
        },
        _ => Ok(None),
    }
}

/// The byte offset of a line and column (in characters) of `text`.
fn offset(text: &str, at: Pos) -> usize {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in text.char_indices() {
        if line == at.line && col == at.col {
            return i;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    text.len()
}

fn err(at: Pos, message: impl Into<String>) -> SqlErrors {
    SqlErrors(vec![SqlError::new(at, message)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_complete_at_its_semicolon_not_one_inside_a_string() {
        assert!(!complete("CREATE STREAM s AS SELECT"));
        assert!(!complete("PRINT 'a;"));
        assert!(!complete("SELECT 'x;' FROM s"));
        assert!(complete("SELECT 'x;' FROM s EMIT CHANGES;"));
        assert!(complete("exit"));
        assert!(!complete("exits"));
        assert!(!complete(""));
    }

    #[test]
    fn a_file_splits_at_semicolons_outside_strings_and_comments() {
        let s = split_statements("-- a; comment\nCREATE STREAM a WITH (kafka_topic='x;y');\n;\nCREATE STREAM b AS SELECT * FROM a EMIT CHANGES").expect("classifies");
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].ends_with("'x;y');"), "{s:?}");
        assert_eq!(s[1], "CREATE STREAM b AS SELECT * FROM a EMIT CHANGES;");
    }

    #[test]
    fn shell_statements_are_told_apart() {
        assert_eq!(
            classify("show streams;").expect("classifies"),
            Command::Show(Listing::Streams)
        );
        assert_eq!(
            classify("LIST TOPICS;").expect("classifies"),
            Command::Show(Listing::Topics)
        );
        assert_eq!(
            classify("describe `Orders`;").expect("classifies"),
            Command::Describe("Orders".into())
        );
        assert_eq!(
            classify("DESCRIBE Orders;").expect("classifies"),
            Command::Describe("orders".into())
        );
        assert_eq!(
            classify("PRINT 'orders' FROM BEGINNING LIMIT 3;").expect("classifies"),
            Command::Print {
                topic: "orders".into(),
                limit: Some(3)
            }
        );
        assert_eq!(
            classify("drop stream if exists big;").expect("classifies"),
            Command::Drop("big".into())
        );
        assert!(matches!(
            classify("CREATE STREAM a AS SELECT * FROM b EMIT CHANGES;").expect("classifies"),
            Command::Create(_)
        ));
    }

    #[test]
    fn a_push_query_loses_its_limit_and_keeps_the_rest() {
        let c = classify("SELECT a, 'LIMIT 2' AS b FROM s\n  WHERE a > 1 EMIT CHANGES LIMIT 5;")
            .expect("classifies");
        assert_eq!(
            c,
            Command::Select {
                query: "SELECT a, 'LIMIT 2' AS b FROM s\n  WHERE a > 1 EMIT CHANGES".into(),
                limit: Some(5)
            }
        );
        let c = classify("SELECT * FROM s EMIT CHANGES;").expect("classifies");
        assert_eq!(
            c,
            Command::Select {
                query: "SELECT * FROM s EMIT CHANGES".into(),
                limit: None
            }
        );
    }

    #[test]
    fn mistakes_are_named_with_their_place() {
        let e = classify("SELECT * FROM s;").expect_err("an error");
        assert!(e.0[0].message.contains("EMIT CHANGES"), "{e:?}");
        let e = classify("SELECT * FROM s EMIT CHANGES LIMIT 0;").expect_err("an error");
        assert!(e.0[0].message.contains("above 0"), "{e:?}");
        let e = classify("SHOW STREAMZ;").expect_err("an error");
        assert_eq!((e.0[0].at.line, e.0[0].at.col), (1, 6));
        let e = classify("DESCRIBE a b;").expect_err("an error");
        assert!(e.0[0].message.contains("after the name"), "{e:?}");
        let e = classify("DESCRBE a;").expect_err("an error");
        assert_eq!(e.0[0].suggestion.as_deref(), Some("DESCRIBE"));
    }
}
