//! `sluice sql` with no file: an interactive shell in the spirit of the ksql
//! CLI. `CREATE` statements build up a session (each checked as it is
//! typed); `SHOW`, `DESCRIBE` read it; `PRINT` and push queries
//! (`SELECT ... EMIT CHANGES`) compile the session plus a `stdout` sink and
//! run it as a child `sluice run`, printing rows until `LIMIT` or Ctrl-C.
//!
//! A child process rather than a thread: Ctrl-C then stops the query the
//! way it stops any run (a last checkpoint, no half-written output), and a
//! query that fails cannot take the shell with it.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::config::{self, HostConfig, LoadOptions};
use crate::sql::shell::{self, Listing};
use crate::sql::{self, Catalog, Probe, SqlErrors};

/// What the shell was started with.
pub struct ShellArgs {
    /// Where query state goes (default: a temporary directory).
    pub data_dir: Option<PathBuf>,
    /// Extra plugin directories.
    pub plugin_path: Vec<PathBuf>,
    /// The operator's host configuration, passed on to queries.
    pub host_config: Option<PathBuf>,
    /// A `sluice serve` to deploy the session's pipeline to.
    pub server: Option<String>,
    /// The pipeline's name on the server.
    pub name: String,
}

/// Set by SIGINT while a query runs; the query's child process gets the same
/// signal from the terminal and stops by itself.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Keeps Ctrl-C from killing the shell. A handler (not SIG_IGN) so that
/// child processes start with the default action again.
fn catch_sigint() {
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe; the sigaction struct is fully initialised.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

/// One accepted statement.
struct Stmt {
    text: String,
    /// The stream, table or connector it defines (for `DROP`).
    defines: Option<String>,
}

struct Session {
    args: ShellArgs,
    statements: Vec<Stmt>,
    /// Where relative paths in statements point: the shell's directory.
    base: PathBuf,
    /// Per-query pipeline files and state.
    work: PathBuf,
    _temp: Option<tempfile::TempDir>,
    queries: u64,
}

/// Reads lines with editing and history on a terminal, plainly otherwise.
enum Input {
    Editor(rustyline::DefaultEditor),
    Plain(std::io::StdinLock<'static>),
}

enum Line {
    Text(String),
    /// Ctrl-C at the prompt: drop what was typed.
    Cancel,
    Eof,
}

impl Input {
    fn new() -> Self {
        if std::io::stdin().is_terminal() {
            if let Ok(e) = rustyline::DefaultEditor::new() {
                return Input::Editor(e);
            }
        }
        Input::Plain(std::io::stdin().lock())
    }

    fn interactive(&self) -> bool {
        matches!(self, Input::Editor(_))
    }

    fn read(&mut self, prompt: &str) -> Line {
        match self {
            Input::Editor(e) => match e.readline(prompt) {
                Ok(l) => Line::Text(l),
                Err(rustyline::error::ReadlineError::Interrupted) => Line::Cancel,
                Err(_) => Line::Eof,
            },
            Input::Plain(r) => {
                let mut l = String::new();
                match r.read_line(&mut l) {
                    Ok(0) | Err(_) => Line::Eof,
                    Ok(_) => Line::Text(l),
                }
            }
        }
    }

    /// Keeps a whole statement in the history (never on disk: connector
    /// statements hold passwords).
    fn remember(&mut self, statement: &str) {
        if let Input::Editor(e) = self {
            let _ = e.add_history_entry(statement.trim());
        }
    }
}

const HELP: &str = "\
Statements end with `;`. Names are case-insensitive unless quoted.

  CREATE SOURCE|SINK CONNECTOR name WITH (...);   add a connector to the session
  CREATE STREAM|TABLE name [WITH (...)] [AS SELECT ...];
                                  add a stream or table (checked as you type it)
  SHOW STREAMS | TABLES | CONNECTORS | TOPICS;    list what the session defines
  DESCRIBE name;                  a stream's or table's columns
  PRINT 'topic' [FROM BEGINNING] [LIMIT n];       a topic's records as they come
  SELECT ... FROM stream ... EMIT CHANGES [LIMIT n];
                                  a push query: rows as they come, until LIMIT or Ctrl-C
  DROP STREAM|TABLE|CONNECTOR name;               forget a statement
  RUN SCRIPT 'file.sql';          add a file's statements
  SAVE 'file.sql';                write the session's statements (`sluice sql file.sql` runs them)
  HELP;  EXIT;

Queries read their sources from the beginning each time, with fresh state, and
leave the session's statements untouched. With --server (or SLUICE_SERVER),
every change to a session that has a sink connector is deployed to that
server as pipeline --name. docs/sql.md has the dialect.";

/// `sluice sql` without a file.
pub fn run(args: ShellArgs) -> Result<ExitCode> {
    let base = std::env::current_dir().context("cannot read the current directory")?;
    let (work, temp) = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("sluice-sql-")
                .tempdir()
                .context("cannot create a temporary directory for queries")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let mut session = Session {
        args,
        statements: Vec::new(),
        base,
        work,
        _temp: temp,
        queries: 0,
    };
    catch_sigint();
    let mut input = Input::new();
    if input.interactive() {
        println!(
            "Sluice SQL shell. Statements end with `;`. HELP; lists the commands, EXIT; leaves."
        );
    }
    let mut failed = false;
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "sluice> "
        } else {
            "     > "
        };
        match input.read(prompt) {
            Line::Eof => break,
            Line::Cancel => {
                buffer.clear();
                continue;
            }
            Line::Text(l) => {
                buffer.push_str(&l);
                if !buffer.ends_with('\n') {
                    buffer.push('\n');
                }
            }
        }
        if buffer.trim().is_empty() {
            buffer.clear();
            continue;
        }
        if !shell::complete(&buffer) {
            continue;
        }
        let typed = std::mem::take(&mut buffer);
        input.remember(&typed);
        // Several statements may come on one line.
        let statements = match sql::split_statements(&typed) {
            Ok(s) => s,
            Err(e) => {
                failed = true;
                eprintln!("{}", render(&e, 0));
                continue;
            }
        };
        let mut leave = false;
        for statement in statements {
            INTERRUPTED.store(false, Ordering::SeqCst);
            match session.execute(&statement) {
                Ok(true) => {}
                Ok(false) => {
                    leave = true;
                    break;
                }
                Err(e) => {
                    failed = true;
                    eprintln!("{e}");
                }
            }
        }
        if leave {
            break;
        }
    }
    if !buffer.trim().is_empty() {
        eprintln!("error: the input ended inside a statement (missing `;`?)");
        failed = true;
    }
    // Piped input (scripts, tests) reports whether every statement worked.
    Ok(if failed && !input.interactive() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

impl Session {
    /// Runs one statement; `Ok(false)` leaves the shell.
    fn execute(&mut self, text: &str) -> Result<bool, String> {
        let cmd = shell::classify(text).map_err(|e| render(&e, 0))?;
        match cmd {
            shell::Command::Exit => return Ok(false),
            shell::Command::Help => println!("{HELP}"),
            shell::Command::Create(s) => self.create(&s)?,
            shell::Command::Show(what) => self.show(what)?,
            shell::Command::Describe(name) => self.describe(&name)?,
            shell::Command::Drop(name) => self.drop_statement(&name)?,
            shell::Command::RunScript(f) => self.run_script(&f)?,
            shell::Command::Save(f) => self.save(&f)?,
            shell::Command::Print { topic, limit } => {
                let at = sql::Pos { line: 1, col: 1 };
                self.query(&[], Probe::Topic(topic, at), limit, Output::Records)?
            }
            shell::Command::Select { query, limit } => {
                let n = self.queries + 1;
                let name = format!("shell_query_{n}");
                // The query is compiled as a stream of its own, on its own
                // line so the user's line numbers stay right.
                let stmt = format!("CREATE STREAM {name} AS\n{query};");
                let id = crate::sql::ast::Ident {
                    name,
                    at: sql::Pos { line: 1, col: 1 },
                };
                self.query(&[stmt], Probe::Relation(id), limit, Output::Rows)?
            }
        }
        Ok(true)
    }

    fn text(&self, extra: &[String]) -> (String, usize) {
        let mut text = String::new();
        for s in &self.statements {
            text.push_str(s.text.trim_end());
            text.push('\n');
        }
        let lines = text.lines().count();
        for e in extra {
            text.push_str(e);
            text.push('\n');
        }
        (text, lines)
    }

    fn compile(
        &self,
        extra: &[String],
        probe: Option<Probe>,
    ) -> Result<(sql::Plan, Catalog), String> {
        let (text, offset) = self.text(extra);
        // A query's own statement starts with the `CREATE STREAM ... AS`
        // line the shell added.
        let offset = if probe.is_some() && !extra.is_empty() {
            offset + 1
        } else {
            offset
        };
        sql::compile_session(&text, &self.args.name, None, probe).map_err(|e| render(&e, offset))
    }

    /// Checks the pipeline as `sluice run` would load it (parameters, files,
    /// `${VAR}`s), so a statement that cannot run is refused as it is typed.
    fn check(&self, plan: &sql::Plan) -> Result<(), String> {
        let mut plan = plan.clone();
        plan.absolutize_paths(&self.base);
        if plan.sinks.is_empty() {
            // A session without a sink connector yet: check it as the
            // queries will run it, with a sink reading everything.
            let nodes = plan
                .sources
                .iter()
                .chain(&plan.stages)
                .map(|e| sql::plan::Y::Str(e.name.clone()))
                .collect();
            plan.sinks.push(sql::plan::Entry {
                name: sql::PROBE_SINK.into(),
                at: sql::Pos::default(),
                note: String::new(),
                body: vec![
                    ("type".into(), sql::plan::Y::Str("stdout".into())),
                    ("inputs".into(), sql::plan::Y::List(nodes)),
                ],
            });
        }
        let yaml = plan.to_yaml("checked by the shell");
        let options = LoadOptions::for_host(
            &HostConfig::current().map_err(|e| e.to_string())?,
            self.args.plugin_path.clone(),
        );
        let at = self.base.join("shell.sql");
        config::load_str(&at, &yaml, &options, &|v| std::env::var(v).ok())
            .map(|_| ())
            .map_err(|d| {
                let mut out = String::new();
                for x in &d.sorted().0 {
                    out.push_str(&format!("error: {}: {}\n", x.field, x.message));
                }
                out.trim_end().to_string()
            })
    }

    fn create(&mut self, text: &str) -> Result<(), String> {
        let stmt = text.trim().to_string();
        let (plan, catalog) = self.compile(std::slice::from_ref(&stmt), None)?;
        self.check(&plan)?;
        let defines = sql::defined_name(&stmt);
        let what = match defines.as_deref().and_then(|n| describe_kind(&catalog, n)) {
            Some(k) => format!("{k} `{}` created", defines.clone().unwrap_or_default()),
            None => "statement accepted".into(),
        };
        self.statements.push(Stmt {
            text: stmt,
            defines,
        });
        println!("{what}");
        self.deploy(&plan)
    }

    /// With a server configured, a session that writes somewhere runs there.
    fn deploy(&self, plan: &sql::Plan) -> Result<(), String> {
        let Some(url) = &self.args.server else {
            return Ok(());
        };
        if plan.sinks.is_empty() {
            return Ok(());
        }
        let file = self.work.join(format!("{}.yaml", self.args.name));
        std::fs::write(&file, plan.to_yaml("deployed by the `sluice sql` shell"))
            .map_err(|e| format!("error: cannot write {}: {e}", file.display()))?;
        match super::remote_cmd::deploy(url, &file) {
            Ok(code) if code == ExitCode::SUCCESS => Ok(()),
            Ok(_) => Err("error: the server refused the session's pipeline".into()),
            Err(e) => Err(format!("error: {e:#}")),
        }
    }

    fn catalog(&self) -> Result<Catalog, String> {
        if self.statements.is_empty() {
            return Ok(Catalog::default());
        }
        self.compile(&[], None).map(|(_, c)| c)
    }

    fn show(&self, what: Listing) -> Result<(), String> {
        let c = self.catalog()?;
        let rows: Vec<Vec<String>> = match what {
            Listing::Streams | Listing::Tables => c
                .relations
                .iter()
                .filter(|r| r.table == (what == Listing::Tables))
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.topic.clone(),
                        r.key.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
            Listing::Connectors => c
                .connectors
                .iter()
                .map(|k| {
                    vec![
                        k.name.clone(),
                        if k.source { "SOURCE" } else { "SINK" }.into(),
                        k.class.clone(),
                    ]
                })
                .collect(),
            Listing::Topics => c.topics.iter().map(|t| vec![t.clone()]).collect(),
        };
        let header: &[&str] = match what {
            Listing::Streams => &["Stream Name", "Topic", "Key"],
            Listing::Tables => &["Table Name", "Topic", "Key"],
            Listing::Connectors => &["Connector Name", "Type", "Class"],
            Listing::Topics => &["Topic Name"],
        };
        print!("{}", listing(header, &rows));
        Ok(())
    }

    fn describe(&self, name: &str) -> Result<(), String> {
        let c = self.catalog()?;
        let Some(r) = c.relations.iter().find(|r| r.name == name) else {
            let known: Vec<&str> = c.relations.iter().map(|r| r.name.as_str()).collect();
            let hint = sql::error::closest(name, known.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(format!("error: no stream or table `{name}`{hint}"));
        };
        println!(
            "Name  : {}\nType  : {}\nTopic : {}",
            r.name,
            if r.table { "TABLE" } else { "STREAM" },
            r.topic
        );
        if let Some(k) = &r.key {
            println!("Key   : {k}");
        }
        match &r.columns {
            Some(cols) => {
                let rows: Vec<Vec<String>> = cols.iter().map(|c| vec![c.clone()]).collect();
                print!("{}", listing(&["Column"], &rows));
            }
            None => println!(
                "Columns: any field of the topic's JSON rows (a stream over a topic declares none)"
            ),
        }
        Ok(())
    }

    fn drop_statement(&mut self, name: &str) -> Result<(), String> {
        let Some(i) = self
            .statements
            .iter()
            .position(|s| s.defines.as_deref() == Some(name))
        else {
            return Err(format!("error: the session defines no `{name}`"));
        };
        let removed = self.statements.remove(i);
        if self.catalog().is_err() {
            self.statements.insert(i, removed);
            return Err(format!(
                "error: other statements read `{name}`; drop them first"
            ));
        }
        println!("`{name}` dropped");
        Ok(())
    }

    fn run_script(&mut self, file: &str) -> Result<(), String> {
        let path = self.base.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
        let stmts =
            sql::split_statements(&text).map_err(|e| e.render(&path.display().to_string()))?;
        // All or nothing, as `sluice sql FILE` is.
        let before = self.statements.len();
        for s in stmts {
            let defines = sql::defined_name(&s);
            self.statements.push(Stmt { text: s, defines });
        }
        match self.compile(&[], None) {
            Ok((plan, _)) => {
                if let Err(e) = self.check(&plan) {
                    self.statements.truncate(before);
                    return Err(e);
                }
                println!(
                    "{} statement(s) added from {file}",
                    self.statements.len() - before
                );
                self.deploy(&plan)
            }
            Err(e) => {
                self.statements.truncate(before);
                Err(e)
            }
        }
    }

    fn save(&self, file: &str) -> Result<(), String> {
        let path = self.base.join(file);
        let (text, _) = self.text(&[]);
        std::fs::write(&path, text)
            .map_err(|e| format!("error: cannot write {}: {e}", path.display()))?;
        println!(
            "{} statement(s) saved to {}",
            self.statements.len(),
            path.display()
        );
        Ok(())
    }

    fn query(
        &mut self,
        extra: &[String],
        probe: Probe,
        limit: Option<u64>,
        output: Output,
    ) -> Result<(), String> {
        let (mut plan, catalog) = self.compile(extra, Some(probe.clone()))?;
        self.queries += 1;
        let dir = self.work.join(format!("query-{}", self.queries));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("error: cannot create {}: {e}", dir.display()))?;
        plan.data_dir = Some(dir.join("state").display().to_string());
        plan.absolutize_paths(&self.base);
        let file = dir.join("pipeline.yaml");
        std::fs::write(&file, plan.to_yaml("a query of the `sluice sql` shell"))
            .map_err(|e| format!("error: cannot write {}: {e}", file.display()))?;
        let columns = match &probe {
            Probe::Relation(id) => catalog
                .relations
                .iter()
                .find(|r| r.name == id.name)
                .and_then(|r| r.columns.clone()),
            Probe::Topic(..) => None,
        };
        let result = self.run_child(&file, limit, output, columns);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn run_child(
        &self,
        file: &Path,
        limit: Option<u64>,
        output: Output,
        columns: Option<Vec<String>>,
    ) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("error: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("-q").arg("run").arg(file).arg("--no-progress");
        for p in &self.args.plugin_path {
            cmd.arg("--plugin-path").arg(p);
        }
        if let Some(h) = &self.args.host_config {
            cmd.arg("--host-config").arg(h);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("error: cannot start the query: {e}"))?;
        let messages = child
            .stderr
            .take()
            .map(|e| std::thread::spawn(move || relay(e)));
        let Some(out) = child.stdout.take() else {
            return Err("error: the query has no output".into());
        };
        let mut printer = Printer::new(output, columns);
        let mut shown = 0u64;
        let mut stopped = false;
        let stdout = std::io::stdout();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if stopped {
                // Drained so the child never blocks on a full pipe.
                continue;
            }
            let mut o = stdout.lock();
            let _ = o.write_all(printer.line(&line).as_bytes());
            let _ = o.flush();
            shown += 1;
            if limit.is_some_and(|l| shown >= l) {
                stopped = true;
                // A graceful stop, as Ctrl-C would ask for.
                // SAFETY: kill(2) on our own child's pid.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        let status = child.wait().map_err(|e| format!("error: {e}"))?;
        let held = messages.and_then(|h| h.join().ok()).unwrap_or_default();
        print!("{}", printer.end());
        if stopped {
            println!("Limit Reached\nQuery terminated");
        } else if INTERRUPTED.load(Ordering::SeqCst) {
            println!("Query terminated");
        } else if !status.success() {
            return Err(format!("{}error: the query stopped with {status}", held));
        }
        Ok(())
    }
}

/// Passes a query's warnings and errors on as they come and keeps the rest
/// (its run summary), which is shown only if the query fails.
fn relay(stderr: std::process::ChildStderr) -> String {
    const KEEP: usize = 64 * 1024;
    let mut held = String::new();
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if line.contains(" WARN ") || line.contains(" ERROR ") || line.starts_with("error") {
            eprintln!("{line}");
        } else if held.len() < KEEP {
            held.push_str(&line);
            held.push('\n');
        }
    }
    held
}

fn describe_kind(c: &Catalog, name: &str) -> Option<&'static str> {
    if let Some(r) = c.relations.iter().find(|r| r.name == name) {
        return Some(if r.table { "Table" } else { "Stream" });
    }
    c.connectors.iter().find(|k| k.name == name).map(|k| {
        if k.source {
            "Source connector"
        } else {
            "Sink connector"
        }
    })
}

/// Errors of the statement being typed, with lines counted from its start.
fn render(errors: &SqlErrors, offset: usize) -> String {
    let mut sorted = errors.0.clone();
    sorted.sort_by_key(|e| e.at);
    let mut out = String::new();
    for e in &sorted {
        let mut e = e.clone();
        if e.at.line > offset {
            e.at.line -= offset;
            out.push_str(&format!("error: {e}\n"));
        } else {
            out.push_str(&format!("error: in an earlier statement: {e}\n"));
        }
    }
    out.trim_end().to_string()
}

/// A bordered table, as the ksql CLI prints listings.
fn listing(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (c, w) in cells.iter().zip(&widths) {
            s.push_str(&format!(" {c:<w$} |"));
        }
        s.pop();
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    out.push_str(
        &"-".repeat(
            widths
                .iter()
                .map(|w| w + 3)
                .sum::<usize>()
                .saturating_sub(1),
        ),
    );
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
    }
    if rows.is_empty() {
        out.push_str(" (none)\n");
    }
    out
}

#[derive(Clone, Copy)]
enum Output {
    /// `PRINT`: one record per line, with time and key.
    Records,
    /// A push query: a table of the selected columns.
    Rows,
}

/// Turns the child's envelope lines into what the user reads.
struct Printer {
    output: Output,
    columns: Option<Vec<String>>,
    header_done: bool,
}

const CELL: usize = 18;

impl Printer {
    fn new(output: Output, columns: Option<Vec<String>>) -> Self {
        Self {
            output,
            columns,
            header_done: false,
        }
    }

    fn line(&mut self, line: &str) -> String {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return format!("{line}\n");
        };
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        match self.output {
            Output::Records => {
                let ts = v.get("timestamp_ms").and_then(Value::as_i64).unwrap_or(0);
                let key = v.get("key").cloned().unwrap_or(Value::Null);
                format!(
                    "rowtime: {}, key: {}, value: {}\n",
                    rowtime(ts),
                    cell(&key),
                    value
                )
            }
            Output::Rows => {
                let mut out = String::new();
                if !self.header_done {
                    self.header_done = true;
                    if self.columns.is_none() {
                        // Columns of a stream over a topic: the first row's.
                        self.columns = value.as_object().map(|o| o.keys().cloned().collect());
                    }
                    let cols = self.columns.clone().unwrap_or_else(|| vec!["value".into()]);
                    out.push_str(&self.rule(cols.len()));
                    out.push_str(&row(cols.iter().map(|c| c.to_uppercase())));
                    out.push_str(&self.rule(cols.len()));
                }
                let cols = self.columns.clone().unwrap_or_else(|| vec!["value".into()]);
                let cells = cols.iter().map(|c| match (&value, self.columns.is_some()) {
                    (Value::Object(o), true) => o.get(c).map_or("null".into(), cell),
                    (v, _) => cell(v),
                });
                out.push_str(&row(cells));
                out
            }
        }
    }

    fn rule(&self, n: usize) -> String {
        let mut s = String::from("+");
        for _ in 0..n {
            s.push_str(&"-".repeat(CELL));
            s.push('+');
        }
        s + "\n"
    }

    fn end(&self) -> String {
        match (self.output, self.header_done) {
            (Output::Rows, true) => self.rule(self.columns.as_ref().map_or(1, |c| c.len())),
            _ => String::new(),
        }
    }
}

fn row(cells: impl Iterator<Item = String>) -> String {
    let mut s = String::from("|");
    for c in cells {
        s.push_str(&format!("{c:<CELL$}|"));
    }
    s + "\n"
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm Z`.
fn rowtime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::format::time::civil_from_days(secs.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03} Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rowtimes_are_civil_utc_times() {
        assert_eq!(rowtime(0), "1970-01-01 00:00:00.000 Z");
        assert_eq!(rowtime(951_782_400_123), "2000-02-29 00:00:00.123 Z");
        assert_eq!(rowtime(1_764_761_234_567), "2025-12-03 11:27:14.567 Z");
    }

    #[test]
    fn push_query_rows_follow_the_columns_and_show_missing_ones_as_null() {
        let mut p = Printer::new(Output::Rows, Some(vec!["id".into(), "name".into()]));
        let first =
            p.line(r#"{"key":null,"value":{"id":1,"name":"a"},"headers":{},"timestamp_ms":0}"#);
        assert!(first.contains("|ID"), "{first}");
        assert!(
            first.contains("|1                 |a                 |"),
            "{first}"
        );
        let second = p.line(r#"{"key":null,"value":{"id":2},"headers":{},"timestamp_ms":0}"#);
        assert_eq!(second, "|2                 |null              |\n");
    }

    #[test]
    fn listings_are_aligned_and_say_when_empty() {
        let t = listing(&["Name", "Topic"], &[vec!["orders".into(), "o".into()]]);
        assert_eq!(t, " Name   | Topic\n----------------\n orders | o\n");
        assert!(listing(&["Name"], &[]).contains("(none)"));
    }
}
