//! `sluice sql` without a file: the interactive shell, driven through a
//! pipe as a script would drive it. Queries run as child `sluice run`s over a
//! FileStream source in the test's directory, so nothing outside it is needed.

use std::io::Write;
use std::process::{Output, Stdio};

use crate::support::*;

const ORDERS: &str = r#"{"id":1,"amount":5}
{"id":2,"amount":20}
{"id":3,"amount":30}
{"id":4,"amount":40}
{"id":5,"amount":1}
"#;

const SOURCE: &str = "CREATE SOURCE CONNECTOR src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'orders.jsonl', 'topic' = 'orders');
CREATE STREAM orders WITH (kafka_topic = 'orders', value_format = 'JSON');
CREATE STREAM big AS SELECT id, amount * 2 AS doubled FROM orders WHERE amount > 10 EMIT CHANGES;
";

fn shell(dir: &std::path::Path, input: &str) -> Output {
    let mut child = sluice()
        .arg("sql")
        .arg("--plugin-path")
        .arg(target_dir().join("plugins"))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice sql starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write statements");
    child.wait_with_output().expect("sluice sql ends")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_shell_lists_describes_prints_and_runs_push_queries_with_a_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("orders.jsonl"), ORDERS).expect("write");
    let input = format!(
        "{SOURCE}SHOW STREAMS;\nLIST TOPICS;\nDESCRIBE big;\n\
         SELECT id, doubled\n  FROM big EMIT CHANGES LIMIT 2;\n\
         PRINT 'orders' FROM BEGINNING LIMIT 1;\n\
         SELECT * FROM big WHERE doubled > 70 EMIT CHANGES;\nexit\n"
    );
    let out = shell(dir.path(), &input);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(out.status.success(), "{ctx}");
    assert!(stdout.contains("Stream `big` created"), "{ctx}");
    assert!(stdout.contains(" big         | big"), "SHOW STREAMS: {ctx}");
    assert!(stdout.contains(" orders\n"), "LIST TOPICS: {ctx}");
    assert!(stdout.contains(" doubled\n"), "DESCRIBE: {ctx}");
    // The push query: the first two rows past the filter, then the limit.
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(
        rows[0].split_whitespace().collect::<String>(),
        "|ID|DOUBLED|",
        "{ctx}"
    );
    assert_eq!(
        rows[1].split_whitespace().collect::<String>(),
        "|2|40|",
        "{ctx}"
    );
    assert_eq!(
        rows[2].split_whitespace().collect::<String>(),
        "|3|60|",
        "{ctx}"
    );
    assert!(stdout.contains("Limit Reached"), "{ctx}");
    assert!(
        stdout.contains(r#"key: null, value: {"id":1,"amount":5}"#),
        "PRINT: {ctx}"
    );
    // The last query runs until its bounded source drains: one row (id 4).
    let last: Vec<&str> = rows[3..].iter().map(|r| r.trim()).collect();
    assert_eq!(last.len(), 2, "header and one row: {ctx}");
    assert_eq!(
        last[1].split_whitespace().collect::<String>(),
        "|4|80|",
        "{ctx}"
    );
    // Queries leave nothing behind in the user's directory.
    let entries: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(entries.len(), 1, "{ctx}");
}

#[test]
fn a_bad_statement_is_refused_with_its_place_and_leaves_the_session_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("orders.jsonl"), ORDERS).expect("write");
    let input = format!(
        "{SOURCE}CREATE STREAM nope AS\n  SELECT id FROM ordrs EMIT CHANGES;\n\
         DROP STREAM orders;\nSHOW STREAMS;\nDESCRBE big;\n\
         SELECT * FROM big EMIT CHANGES LIMIT 1;\nSAVE 'session.sql';\n"
    );
    let out = shell(dir.path(), &input);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    // Piped statements that failed make the exit status say so.
    assert!(!out.status.success(), "{ctx}");
    assert!(
        stderr.contains("error: 2:18: unknown stream or table `ordrs` (did you mean `orders`?)"),
        "{ctx}"
    );
    assert!(stderr.contains("other statements read `orders`"), "{ctx}");
    assert!(stderr.contains("(did you mean `DESCRIBE`?)"), "{ctx}");
    assert!(!stdout.contains("nope"), "{ctx}");
    assert!(stdout.contains(" orders "), "orders was not dropped: {ctx}");
    assert!(stdout.contains("Limit Reached"), "{ctx}");
    // What SAVE wrote is the session: it runs as a file.
    let saved = std::fs::read_to_string(dir.path().join("session.sql")).expect("saved");
    assert_eq!(saved.matches("CREATE").count(), 3, "{saved}");
    assert!(!saved.contains("nope"), "{saved}");
}
