//! `${VAR}` interpolation of environment variables into pipeline files, so
//! secrets stay out of the file.

/// Replaces `${NAME}` and `${NAME:-default}` in `text`; `$$` is a literal `$`.
/// `lookup` returns the variable's value. Errors name the missing variable.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{text}`"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{expr}}}` is not a valid variable reference; expected ${{NAME}} or ${{NAME:-default}}"));
            }
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)"
                    ))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PASSWORD").then(|| "s3cret".to_string())
    }

    #[test]
    fn replaces_set_variables_and_defaults() {
        assert_eq!(
            interpolate("p=${PASSWORD}", &env).as_deref(),
            Ok("p=s3cret")
        );
        assert_eq!(interpolate("${NOPE:-x}y", &env).as_deref(), Ok("xy"));
        assert_eq!(
            interpolate("cost $$5 $x", &env).as_deref(),
            Ok("cost $5 $x")
        );
    }

    #[test]
    fn missing_variable_without_default_is_an_error_naming_it() {
        let err = interpolate("${MISSING_ONE}", &env).expect_err("missing");
        assert!(err.contains("MISSING_ONE"), "{err}");
    }
}
