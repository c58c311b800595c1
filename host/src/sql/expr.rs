//! SQL expressions as Sluice expression-language text (what `filter`'s
//! `where` and `project`'s `set` parse), with columns already resolved.

use super::ast::{Expr, ExprKind};
use super::error::SqlError;

/// ksqlDB scalar functions and their expression-language names.
const FUNCTIONS: &[(&str, &str)] = &[
    ("lower", "lower"),
    ("lcase", "lower"),
    ("upper", "upper"),
    ("ucase", "upper"),
    ("trim", "trim"),
    ("len", "length"),
    ("length", "length"),
    ("coalesce", "coalesce"),
    ("ifnull", "coalesce"),
    ("concat", "concat"),
    ("round", "round"),
    ("substring", "substr"),
    ("substr", "substr"),
    ("abs", "abs"),
];

/// True when `name` (lowercase) is one of the ksqlDB scalar functions
/// translated here.
pub fn is_sql_function(name: &str) -> bool {
    FUNCTIONS.iter().any(|(k, _)| *k == name)
}

/// The types `CAST` converts to.
const CAST_TYPES: &[&str] = &[
    "int", "integer", "bigint", "double", "decimal", "boolean", "varchar", "string",
];

/// `DECIMAL(precision, scale)`'s two sizes, as ksqlDB bounds them.
fn decimal_sizes(sizes: &[String]) -> Result<(u32, u32), String> {
    let [p, s] = sizes else {
        return Err(format!(
            "DECIMAL needs a precision and a scale, e.g. DECIMAL(10, 2); found {} size{}",
            sizes.len(),
            if sizes.len() == 1 { "" } else { "s" }
        ));
    };
    match (p.parse::<u32>(), s.parse::<u32>()) {
        (Ok(p), Ok(s)) if (1..=38).contains(&p) && s <= p => Ok((p, s)),
        _ => Err(format!(
            "DECIMAL({p}, {s}): expected a precision from 1 to 38 and a scale from 0 to the precision"
        )),
    }
}

/// Aggregate functions (refused outside `GROUP BY` queries).
pub const AGGREGATES: &[&str] = &["count", "sum", "avg", "min", "max", "latest_by_offset"];

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "null", "true", "false", "case", "when", "then", "else", "end",
];

/// A field name as the expression language and `project` paths read it.
pub fn field(name: &str) -> String {
    let simple = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name.to_ascii_lowercase().as_str());
    if simple {
        name.to_string()
    } else {
        format!("`{}`", name.replace('`', "``"))
    }
}

/// Resolves a column reference (qualifier, name, the expression) to its field.
pub type Resolve<'a> = dyn FnMut(Option<&str>, &str, &Expr) -> Result<String, SqlError> + 'a;

/// What an expression's names refer to.
pub trait Names {
    /// The field a column reference (qualifier, name, the expression) reads.
    fn column(&mut self, qualifier: Option<&str>, name: &str, e: &Expr)
        -> Result<String, SqlError>;

    /// The field holding an aggregate call's value, where aggregates have
    /// been computed (`HAVING`); `None`: aggregates are not allowed here.
    fn aggregate(&mut self, _call: &Expr) -> Option<Result<String, SqlError>> {
        None
    }

    /// The user-defined functions (`CREATE FUNCTION`, lowercase) callable
    /// here: only where the expression runs in `filter` or `project`.
    fn udfs(&self) -> &[String] {
        &[]
    }
}

/// Columns through a closure, and the UDFs callable.
struct Columns<'c, 'a>(&'c mut Resolve<'a>, &'c [String]);

impl Names for Columns<'_, '_> {
    fn udfs(&self) -> &[String] {
        self.1
    }

    fn column(
        &mut self,
        qualifier: Option<&str>,
        name: &str,
        e: &Expr,
    ) -> Result<String, SqlError> {
        (self.0)(qualifier, name, e)
    }
}

/// Writes `e`; `column` resolves a column reference to its field name, and
/// `udfs` are the user-defined functions it may call.
pub fn text(e: &Expr, udfs: &[String], column: &mut Resolve<'_>) -> Result<String, SqlError> {
    text_in(e, &mut Columns(column, udfs))
}

/// Writes `e`, its names resolved by `names`.
pub fn text_in(e: &Expr, column: &mut dyn Names) -> Result<String, SqlError> {
    let sub = |e: &Expr, column: &mut dyn Names| -> Result<String, SqlError> {
        let t = text_in(e, column)?;
        Ok(match e.kind {
            ExprKind::Binary(..)
            | ExprKind::Unary(..)
            | ExprKind::IsNull(..)
            | ExprKind::In(..)
            | ExprKind::Between(..)
            | ExprKind::Like(..) => format!("({t})"),
            _ => t,
        })
    };
    Ok(match &e.kind {
        ExprKind::Column { qualifier, name } => {
            if qualifier.is_none() && name.eq_ignore_ascii_case("rowtime") {
                return Err(SqlError::new(
                    e.at,
                    "ROWTIME is not available in expressions; use the stream's timestamp column",
                ));
            }
            field(&column.column(qualifier.as_deref(), name, e)?)
        }
        ExprKind::Str(s) => format!("'{}'", s.replace('\'', "''")),
        ExprKind::Num(n) => n.clone(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Null => "null".into(),
        ExprKind::Unary(op, x) => {
            let x = sub(x, column)?;
            if *op == "not" {
                format!("not {x}")
            } else {
                format!("-{x}")
            }
        }
        ExprKind::Binary(op, l, r) => format!("{} {op} {}", sub(l, column)?, sub(r, column)?),
        ExprKind::IsNull(x, neg) => format!(
            "{} is {}null",
            sub(x, column)?,
            if *neg { "not " } else { "" }
        ),
        ExprKind::In(x, items, neg) => {
            let items = items
                .iter()
                .map(|i| sub(i, column))
                .collect::<Result<Vec<_>, _>>()?;
            format!(
                "{} {}in ({})",
                sub(x, column)?,
                if *neg { "not " } else { "" },
                items.join(", ")
            )
        }
        ExprKind::Like(x, pattern, escape, neg) => {
            let escape = escape
                .map(|c| format!(", '{}'", c.to_string().replace('\'', "''")))
                .unwrap_or_default();
            let call = format!(
                "like({}, {}{escape})",
                text_in(x, column)?,
                text_in(pattern, column)?
            );
            if *neg {
                format!("not {call}")
            } else {
                call
            }
        }
        ExprKind::Between(x, lo, hi, neg) => {
            let x = sub(x, column)?;
            let inside = format!(
                "{x} >= {} and {x} <= {}",
                sub(lo, column)?,
                sub(hi, column)?
            );
            if *neg {
                format!("not ({inside})")
            } else {
                inside
            }
        }
        ExprKind::Case {
            operand,
            whens,
            otherwise,
        } => {
            let mut out = "case".to_string();
            if let Some(o) = operand {
                out.push(' ');
                out.push_str(&sub(o, column)?);
            }
            // The keywords delimit the branches: no parentheses needed.
            for (c, v) in whens {
                out.push_str(&format!(
                    " when {} then {}",
                    text_in(c, column)?,
                    text_in(v, column)?
                ));
            }
            if let Some(o) = otherwise {
                out.push_str(&format!(" else {}", text_in(o, column)?));
            }
            out.push_str(" end");
            out
        }
        ExprKind::Call { name, args, star } => {
            if AGGREGATES.contains(&name.as_str()) {
                if let Some(f) = column.aggregate(e) {
                    return Ok(field(&f?));
                }
                return Err(SqlError::new(
                    e.at,
                    format!(
                        "aggregate `{}` is only allowed in the select list and HAVING of a CREATE TABLE ... GROUP BY",
                        name.to_uppercase()
                    ),
                ));
            }
            let udf = column.udfs().iter().find(|u| *u == name).cloned();
            let mapped = match (FUNCTIONS.iter().find(|(k, _)| k == name), &udf) {
                (Some((_, mapped)), _) => mapped.to_string(),
                // The expression language calls it by the same name.
                (None, Some(udf)) => udf.clone(),
                (None, None) => {
                    let mut known: Vec<&str> = FUNCTIONS.iter().map(|(k, _)| *k).collect();
                    let udfs = column.udfs();
                    let defined = if udfs.is_empty() {
                        " (add one with CREATE FUNCTION name AS 'plugin.wasm')".to_string()
                    } else {
                        format!(
                            "; user-defined (CREATE FUNCTION): {}",
                            udfs.join(", ").to_uppercase()
                        )
                    };
                    known.extend(udfs.iter().map(String::as_str));
                    return Err(SqlError::new(
                        e.at,
                        format!(
                            "unknown function `{}`; supported: {}{defined}",
                            name.to_uppercase(),
                            FUNCTIONS
                                .iter()
                                .map(|(k, _)| *k)
                                .collect::<Vec<_>>()
                                .join(", ")
                                .to_uppercase()
                        ),
                    )
                    .suggest(name, known));
                }
            };
            if *star {
                return Err(SqlError::new(
                    e.at,
                    format!("`{name}(*)` is not a function call"),
                ));
            }
            let args = args
                .iter()
                .map(|a| text_in(a, column))
                .collect::<Result<Vec<_>, _>>()?;
            format!("{mapped}({})", args.join(", "))
        }
        ExprKind::Cast(x, ty, sizes) => match ty.to_ascii_lowercase().as_str() {
            "decimal" => {
                let (p, s) = decimal_sizes(sizes).map_err(|m| SqlError::new(e.at, m))?;
                format!("to_decimal({}, {p}, {s})", text_in(x, column)?)
            }
            // `concat` writes any value as text; a null stays null.
            "varchar" | "string" => {
                let x = sub(x, column)?;
                format!("case when {x} is null then null else concat({x}) end")
            }
            // The expression language's conversions: a value that does not
            // convert gives null, as a failed ksqlDB cast does.
            "int" | "integer" => format!("to_int({})", text_in(x, column)?),
            "bigint" => format!("to_bigint({})", text_in(x, column)?),
            "double" => format!("to_double({})", text_in(x, column)?),
            "boolean" => format!("to_boolean({})", text_in(x, column)?),
            other => {
                return Err(SqlError::new(
                    e.at,
                    format!(
                        "CAST to {} is not supported; only to INT / INTEGER, BIGINT, DOUBLE, DECIMAL(p, s), BOOLEAN, VARCHAR / STRING",
                        other.to_uppercase()
                    ),
                )
                .suggest(other, CAST_TYPES.iter().copied()))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ast::Statement;
    use crate::sql::parser::parse;

    fn first_item(sql: &str) -> Expr {
        let stmts = parse(sql).expect("parses");
        let Statement::CreateAs { query, .. } = &stmts[0] else {
            panic!("create as")
        };
        match &query.items[0] {
            crate::sql::ast::SelectItem::Expr { expr, .. } => expr.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn plain(e: &Expr) -> Result<String, SqlError> {
        text(e, &[], &mut |_, name, _| Ok(name.to_string()))
    }

    #[test]
    fn expressions_become_expression_language_text() {
        let e = first_item("CREATE STREAM x AS SELECT CASE WHEN nascimento >= '2000-01-01' THEN 'JOVEM' ELSE 'ADULTO' END AS c FROM s;");
        assert_eq!(
            plain(&e).expect("text"),
            "case when nascimento >= '2000-01-01' then 'JOVEM' else 'ADULTO' end"
        );
        let e = first_item("CREATE STREAM x AS SELECT UCASE(a) || 'x''y' AS c FROM s;");
        assert_eq!(plain(&e).expect("text"), "upper(a) || 'x''y'");
        let e =
            first_item("CREATE STREAM x AS SELECT (a + 1) * 2 BETWEEN 1 AND `end` AS c FROM s;");
        assert_eq!(
            plain(&e).expect("text"),
            "((a + 1) * 2) >= 1 and ((a + 1) * 2) <= `end`"
        );
        let e = first_item("CREATE STREAM x AS SELECT CAST(n AS VARCHAR) AS c FROM s;");
        assert_eq!(
            plain(&e).expect("text"),
            "case when n is null then null else concat(n) end"
        );
    }

    #[test]
    fn casts_become_conversions() {
        for (ty, want) in [
            ("INT", "to_int(a + 1)"),
            ("Integer", "to_int(a + 1)"),
            ("BIGINT", "to_bigint(a + 1)"),
            ("DOUBLE", "to_double(a + 1)"),
            ("BOOLEAN", "to_boolean(a + 1)"),
            ("DECIMAL(10, 2)", "to_decimal(a + 1, 10, 2)"),
            ("decimal(38,0)", "to_decimal(a + 1, 38, 0)"),
            (
                "VARCHAR(20)",
                "case when (a + 1) is null then null else concat((a + 1)) end",
            ),
            (
                "STRING",
                "case when (a + 1) is null then null else concat((a + 1)) end",
            ),
        ] {
            let e = first_item(&format!(
                "CREATE STREAM x AS SELECT CAST(a + 1 AS {ty}) AS c FROM s;"
            ));
            assert_eq!(plain(&e).expect("text"), want, "{ty}");
        }
        for (ty, message) in [
            ("DECIMAL", "DECIMAL needs a precision and a scale, e.g. DECIMAL(10, 2); found 0 sizes"),
            ("DECIMAL(5)", "found 1 size"),
            ("DECIMAL(39, 2)", "DECIMAL(39, 2): expected a precision from 1 to 38"),
            ("DECIMAL(2, 3)", "DECIMAL(2, 3): expected a precision from 1 to 38 and a scale from 0 to the precision"),
            ("DECIMAL(0, 0)", "DECIMAL(0, 0)"),
        ] {
            let e = first_item(&format!("CREATE STREAM x AS SELECT CAST(a AS {ty}) AS c FROM s;"));
            let err = plain(&e).expect_err(ty);
            assert!(err.message.contains(message), "{ty}: {err}");
        }
        let e = first_item("CREATE STREAM x AS SELECT CAST(a AS DOUBEL) AS c FROM s;");
        let err = plain(&e).expect_err("unknown type");
        assert!(
            err.message.contains("CAST to DOUBEL is not supported"),
            "{err}"
        );
        assert_eq!(err.suggestion.as_deref(), Some("double"));
    }

    #[test]
    fn like_becomes_the_like_function() {
        let e = first_item(
            "CREATE STREAM x AS SELECT name LIKE 'A%' AND code NOT LIKE '_x' || y AS c FROM s;",
        );
        assert_eq!(
            plain(&e).expect("text"),
            "(like(name, 'A%')) and (not like(code, '_x' || y))"
        );
    }

    #[test]
    fn unknown_functions_are_named_with_a_suggestion() {
        let e = first_item("CREATE STREAM x AS SELECT LOWR(a) AS c FROM s;");
        let err = plain(&e).expect_err("unknown");
        assert_eq!(err.suggestion.as_deref(), Some("lower"));
        assert!(err.message.contains("unknown function `LOWR`"), "{err}");
    }
}
