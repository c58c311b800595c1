//! Tokens of the ksqlDB dialect, each with the line and column it starts at.

use super::error::{Pos, SqlError};

/// Longest statement file accepted, so a hostile file cannot make the
/// compiler allocate without bound.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A bare word: a keyword or a name, compared case-insensitively.
    Word(String),
    /// A name in backquotes or double quotes: kept as written.
    Quoted(String),
    /// `'text'` with `''` for a quote.
    Str(String),
    /// A number as written.
    Num(String),
    /// Punctuation and operators: `( ) , ; . * = != <> < <= > >= + - / % ||`.
    Sym(&'static str),
    /// The end of the input.
    End,
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Where it starts.
    pub at: Pos,
}

const SYMBOLS: &[&str] = &[
    "||", "!=", "<>", "<=", ">=", "(", ")", ",", ";", ".", "*", "=", "<", ">", "+", "-", "/", "%",
];

/// Splits `text` into tokens; comments (`-- …`, `/* … */`) are skipped.
pub fn tokenize(text: &str) -> Result<Vec<Token>, SqlError> {
    if text.len() > MAX_SOURCE_BYTES {
        return Err(SqlError::new(
            Pos { line: 1, col: 1 },
            format!(
                "the file is {} bytes; at most {MAX_SOURCE_BYTES} are accepted",
                text.len()
            ),
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    // Advances over `n` characters, keeping line and column.
    let advance = |i: &mut usize, line: &mut usize, col: &mut usize, n: usize| {
        for _ in 0..n {
            if chars.get(*i) == Some(&'\n') {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let at = Pos { line, col };
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, 1);
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut col, 1);
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            advance(&mut i, &mut line, &mut col, 2);
            loop {
                if i >= chars.len() {
                    return Err(SqlError::new(at, "unterminated `/*` comment"));
                }
                if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    advance(&mut i, &mut line, &mut col, 2);
                    break;
                }
                advance(&mut i, &mut line, &mut col, 1);
            }
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                advance(&mut i, &mut line, &mut col, 1);
            }
            out.push(Token {
                tok: Tok::Word(chars[start..i].iter().collect()),
                at,
            });
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                advance(&mut i, &mut line, &mut col, 1);
            }
            out.push(Token {
                tok: Tok::Num(chars[start..i].iter().collect()),
                at,
            });
            continue;
        }
        if c == '\'' || c == '`' || c == '"' {
            let mut s = String::new();
            advance(&mut i, &mut line, &mut col, 1);
            loop {
                match chars.get(i) {
                    None => {
                        let what = if c == '\'' { "string" } else { "quoted name" };
                        return Err(SqlError::new(
                            at,
                            format!("unterminated {what}; expected a closing {c}"),
                        ));
                    }
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            s.push(c);
                            advance(&mut i, &mut line, &mut col, 2);
                        } else {
                            advance(&mut i, &mut line, &mut col, 1);
                            break;
                        }
                    }
                    Some(&other) => {
                        s.push(other);
                        advance(&mut i, &mut line, &mut col, 1);
                    }
                }
            }
            out.push(Token {
                tok: if c == '\'' {
                    Tok::Str(s)
                } else {
                    Tok::Quoted(s)
                },
                at,
            });
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
            Some(sym) => {
                advance(&mut i, &mut line, &mut col, sym.len());
                out.push(Token {
                    tok: Tok::Sym(sym),
                    at,
                });
            }
            None => return Err(SqlError::new(at, format!("unexpected character `{c}`"))),
        }
    }
    out.push(Token {
        tok: Tok::End,
        at: Pos { line, col },
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_line_and_column_and_strings_unescape_doubled_quotes() {
        let toks = tokenize("-- note\nSELECT a.b,\n  'it''s' >= 7.5 /* x */ `Mixed Case`;")
            .expect("tokens");
        let got: Vec<(Tok, usize, usize)> = toks
            .into_iter()
            .map(|t| (t.tok, t.at.line, t.at.col))
            .collect();
        assert_eq!(
            got,
            vec![
                (Tok::Word("SELECT".into()), 2, 1),
                (Tok::Word("a".into()), 2, 8),
                (Tok::Sym("."), 2, 9),
                (Tok::Word("b".into()), 2, 10),
                (Tok::Sym(","), 2, 11),
                (Tok::Str("it's".into()), 3, 3),
                (Tok::Sym(">="), 3, 11),
                (Tok::Num("7.5".into()), 3, 14),
                (Tok::Quoted("Mixed Case".into()), 3, 26),
                (Tok::Sym(";"), 3, 38),
                (Tok::End, 3, 39),
            ]
        );
    }

    #[test]
    fn unterminated_strings_and_stray_characters_are_located() {
        let e = tokenize("SELECT\n  'abc").expect_err("unterminated");
        assert_eq!((e.at.line, e.at.col), (2, 3));
        assert!(e.message.contains("unterminated string"), "{e}");
        let e = tokenize("a ? b").expect_err("stray");
        assert_eq!((e.at.line, e.at.col), (1, 3));
    }

    #[test]
    fn oversized_input_is_refused() {
        let big = "a ".repeat(MAX_SOURCE_BYTES);
        let e = tokenize(&big).expect_err("too big");
        assert_eq!(
            e.message,
            format!(
                "the file is {} bytes; at most {MAX_SOURCE_BYTES} are accepted",
                big.len()
            )
        );
    }
}
