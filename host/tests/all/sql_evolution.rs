//! Schema-evolution conflicts in the `postgres` and `mysql` sinks, against
//! real PostgreSQL 15 and MariaDB 10.11 (see `sqldb.rs`): a field whose type
//! changes between events, several sinks adding the same columns at once,
//! and MySQL's case-insensitive column names. The contract: rows the database
//! refuses go to the dead-letter destination with its message, everything
//! else lands, and the run never stops or drops a row without saying why.

use std::path::Path;

use crate::sqldb::{unique, Kind};
use crate::support::*;

fn run(dir: &Path, body: &str) -> String {
    let p = write_pipeline(dir, body);
    let out = run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `(id, message)` of every dead letter in `path`, by id.
fn letters(path: &Path) -> Vec<(i64, String)> {
    if !path.exists() {
        return Vec::new();
    }
    let mut out: Vec<(i64, String)> = json_lines(path)
        .iter()
        .map(|d| {
            assert_eq!(d["headers"]["sluice.error.kind"], "sink", "{d}");
            (
                d["value"]["id"].as_i64().unwrap_or(-1),
                d["headers"]["sluice.error.message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn type_changes_between_events(kind: Kind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = unique("evo_types");
    let input = dir.path().join("in.jsonl");
    // One row per transaction (`batch_size: 1`), so `v` is created from the
    // first row alone (an integer column) and `w` is added later the same way.
    std::fs::write(
        &input,
        concat!(
            "{\"id\":1,\"v\":5}\n",
            "{\"id\":2,\"v\":\"abc\"}\n",
            "{\"id\":3,\"v\":\"7\"}\n",
            "{\"id\":4,\"v\":2.5}\n",
            "{\"id\":5,\"v\":{\"x\":1}}\n",
            "{\"id\":6,\"w\":1}\n",
            "{\"id\":7,\"w\":\"x\"}\n",
            "{\"id\":8,\"v\":9,\"w\":9}\n",
            "{\"id\":9,\"w\":\"3.5\"}\n",
        ),
    )
    .expect("write");
    let dead = dir.path().join("dead.jsonl");
    run(
        dir.path(),
        &format!(
            "sources:\n  in: {{type: file, path: {}}}\nsinks:\n  db:\n    type: {}\n    inputs: [in]\n    url: \"{}\"\n    table: {table}\n    batch_size: 1\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            kind.sink_type(),
            kind.url(),
            q(&dead)
        ),
    );
    let t = kind.q(&table);
    assert_eq!(
        kind.flat(&format!("SELECT id, v, w FROM {t} ORDER BY id")),
        vec!["1|5|∅", "3|7|∅", "6|∅|1", "8|9|9"],
        "every row the database takes lands, a whole number as text included"
    );
    let got = letters(&dead);
    assert_eq!(
        got.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![2, 4, 5, 7, 9],
        "{got:#?}"
    );
    let want: Vec<&str> = match kind {
        Kind::Postgres => vec![
            "invalid input syntax for type bigint: \"abc\"",
            "invalid input syntax for type bigint: \"2.5\"",
            "invalid input syntax for type bigint",
            "invalid input syntax for type bigint: \"x\"",
            "invalid input syntax for type bigint: \"3.5\"",
        ],
        // MariaDB rounds a fraction into an integer column without an error,
        // so the sink refuses it; the rest is the server's own message.
        Kind::Mysql => vec![
            "Incorrect integer value: 'abc' for column",
            "column `v` holds integers and the value 2.5 has a fraction",
            "Incorrect integer value: '{\"x\":1}' for column",
            "Incorrect integer value: 'x' for column",
            "column `w` holds integers and the value \"3.5\" has a fraction",
        ],
    };
    for ((id, message), want) in got.iter().zip(want) {
        assert!(message.contains(want), "row {id}: {message}");
        assert!(
            message.contains(&table),
            "row {id} names the table: {message}"
        );
    }
    kind.exec(&format!("DROP TABLE {t}"));
}

#[test]
fn postgres_sink_dead_letters_a_field_whose_type_changed_and_writes_the_rest() {
    type_changes_between_events(Kind::Postgres);
}

#[test]
fn mysql_sink_dead_letters_a_field_whose_type_changed_and_writes_the_rest() {
    type_changes_between_events(Kind::Mysql);
}

const SINKS: usize = 4;
const ROWS: i64 = 2000;
const NEW_EVERY: i64 = 200;

fn column_of(id: i64) -> String {
    format!("c{}", (id - 1) / NEW_EVERY)
}

fn sinks_adding_the_same_columns_at_once(kind: Kind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = unique("evo_race");
    let input = dir.path().join("in.jsonl");
    // Every 200 rows a new field appears, and all four sinks see it in the
    // same batch: they race to create the table, then to add each column.
    let text: String = (1..=ROWS)
        .map(|i| format!("{{\"id\":{i},\"v\":{i},\"{}\":{i}}}\n", column_of(i)))
        .collect();
    std::fs::write(&input, text).expect("write");
    let dead = dir.path().join("dead.jsonl");
    let sinks: String = (0..SINKS)
        .map(|n| {
            format!(
                "  db{n}:\n    type: {}\n    inputs: [in]\n    url: \"{}\"\n    table: {table}\n    mode: upsert\n    key_fields: [id]\n    batch_size: 100\n",
                kind.sink_type(),
                kind.url()
            )
        })
        .collect();
    let log = run(
        dir.path(),
        &format!(
            "batch_size: 100\nsources:\n  in: {{type: file, path: {}}}\nsinks:\n{sinks}dead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            q(&dead)
        ),
    );
    assert_eq!(letters(&dead), Vec::new(), "nothing refused:\n{log}");
    let t = kind.q(&table);
    let mut columns = kind.columns(&table);
    columns.sort();
    let mut want_columns: Vec<String> = (0..ROWS / NEW_EVERY).map(|k| format!("c{k}")).collect();
    want_columns.extend(["id".to_string(), "v".to_string()]);
    want_columns.sort();
    assert_eq!(columns, want_columns);
    // Each row has its id in `v` and in its own new column, and nothing in
    // the others.
    let select: Vec<String> = (0..ROWS / NEW_EVERY)
        .map(|k| kind.q(&format!("c{k}")))
        .collect();
    let rows = kind.flat(&format!(
        "SELECT id, v, {} FROM {t} ORDER BY id",
        select.join(", ")
    ));
    let want: Vec<String> = (1..=ROWS)
        .map(|i| {
            let cells: Vec<String> = (0..ROWS / NEW_EVERY)
                .map(|k| {
                    if format!("c{k}") == column_of(i) {
                        i.to_string()
                    } else {
                        "∅".to_string()
                    }
                })
                .collect();
            format!("{i}|{i}|{}", cells.join("|"))
        })
        .collect();
    assert_eq!(rows.len(), want.len());
    assert_eq!(rows, want);
    kind.exec(&format!("DROP TABLE {t}"));
}

#[test]
fn postgres_sinks_adding_the_same_columns_at_once_lose_nothing() {
    sinks_adding_the_same_columns_at_once(Kind::Postgres);
}

#[test]
fn mysql_sinks_adding_the_same_columns_at_once_lose_nothing() {
    sinks_adding_the_same_columns_at_once(Kind::Mysql);
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn case_of_field_names(kind: Kind) {
    let table = unique("evo_case");
    let t = kind.q(&table);
    let sink = |dead: &Path, input: &Path| {
        format!(
            "sources:\n  in: {{type: file, path: {}}}\nsinks:\n  db: {{type: {}, inputs: [in], url: \"{}\", table: {table}}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(input),
            kind.sink_type(),
            kind.url(),
            q(dead)
        )
    };
    // The sink creates the table from one batch whose fields differ only in case.
    let first = tempfile::tempdir().expect("tempdir");
    let input = first.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"id\":1,\"Name\":\"ann\",\"Title\":\"dr\"}\n",
            "{\"id\":2,\"name\":\"bob\",\"title\":\"mr\"}\n",
            "{\"id\":3,\"Name\":\"cy\",\"name\":\"CY\"}\n",
        ),
    )
    .expect("write");
    let dead = first.path().join("dead.jsonl");
    run(first.path(), &sink(&dead, &input));
    // A second run looks the table up and writes more case variants.
    let second = tempfile::tempdir().expect("tempdir");
    let input2 = second.path().join("in.jsonl");
    std::fs::write(
        &input2,
        "{\"id\":4,\"NAME\":\"dee\",\"TITLE\":\"ms\",\"Extra\":1}\n{\"id\":5,\"extra\":2}\n",
    )
    .expect("write");
    let dead2 = second.path().join("dead.jsonl");
    run(second.path(), &sink(&dead2, &input2));
    assert_eq!(letters(&dead2), Vec::new());
    match kind {
        Kind::Mysql => {
            // One column per name whatever its case, as MySQL compares them.
            assert_eq!(
                sorted(kind.columns(&table)),
                ["Extra", "Name", "Title", "id"]
            );
            assert_eq!(
                kind.flat(&format!(
                    "SELECT id, Name, Title, Extra FROM {t} ORDER BY id"
                )),
                vec!["1|ann|dr|∅", "2|bob|mr|∅", "4|dee|ms|1", "5|∅|∅|2"]
            );
            // `Name` and `name` in one event name one column twice: refused
            // with the server's message, not guessed.
            let got = letters(&dead);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].0, 3);
            assert!(got[0].1.contains("specified twice"), "{}", got[0].1);
        }
        Kind::Postgres => {
            // Quoted names are case-sensitive: each spelling is its own column.
            assert_eq!(
                sorted(kind.columns(&table)),
                ["Extra", "NAME", "Name", "TITLE", "Title", "extra", "id", "name", "title"]
            );
            assert_eq!(
                kind.flat(&format!(
                    "SELECT id, \"Name\", name, \"Title\", title, \"NAME\", \"Extra\", extra FROM {t} ORDER BY id"
                )),
                vec![
                    "1|ann|∅|dr|∅|∅|∅|∅",
                    "2|∅|bob|∅|mr|∅|∅|∅",
                    "3|cy|CY|∅|∅|∅|∅|∅",
                    "4|∅|∅|∅|∅|dee|1|∅",
                    "5|∅|∅|∅|∅|∅|∅|2"
                ]
            );
            assert_eq!(letters(&dead), Vec::new());
        }
    }
    kind.exec(&format!("DROP TABLE {t}"));
}

#[test]
fn mysql_sink_folds_field_names_that_differ_only_in_case_into_one_column() {
    case_of_field_names(Kind::Mysql);
}

#[test]
fn postgres_sink_keeps_field_names_that_differ_in_case_apart() {
    case_of_field_names(Kind::Postgres);
}

/// Eight sinks create one table from their first batch at once, twenty
/// times over. PostgreSQL's `CREATE TABLE IF NOT EXISTS` is not safe against
/// itself: a racing writer can fail on the catalog's unique index
/// (`pg_type_typname_nsp_index`) instead of finding the table. Each losing
/// sink must read the table back and go on.
#[test]
fn postgres_sinks_creating_the_same_table_at_once_all_go_on() {
    let kind = Kind::Postgres;
    const RACERS: usize = 8;
    const ROUNDS: usize = 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n").expect("write");
    for round in 0..ROUNDS {
        let table = unique("evo_create");
        let sinks: String = (0..RACERS)
            .map(|n| {
                format!(
                    "  db{n}: {{type: postgres, inputs: [in], url: \"{}\", table: {table}, mode: upsert, key_fields: [id]}}\n",
                    kind.url()
                )
            })
            .collect();
        let p = write_pipeline(
            dir.path(),
            &format!(
                "name: race{round}\nsources:\n  in: {{type: file, path: {}}}\nsinks:\n{sinks}",
                q(&input)
            ),
        );
        let out = sluice()
            .arg("run")
            .arg(&p)
            .arg("--no-progress")
            .output()
            .expect("sluice runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "round {round}: {stderr}");
        let t = kind.q(&table);
        let rows = kind.flat(&format!("SELECT id, v FROM {t} ORDER BY id"));
        assert_eq!(rows, vec!["1|a", "2|b"], "round {round}");
        kind.exec(&format!("DROP TABLE {t}"));
    }
}
