//! Bulk import (JSON array or JSON lines, or an export file) and export (JSON lines, SQLite).

use crate::cli::{ExportArgs, ExportFormat, ImportArgs};
use crate::cmds::keys_of;
use crate::error::{code_of, db_err_ro, io_err, CliError, Res};
use crate::image::{ImageOpts, Session};
use crate::out::{bytes_json, quote, to_json, to_serde, Out};
use cairndb::db::{IndexSpec, PendingTxn, WriteOptions};
use cairndb::value::{self, Value};
use cairndb::Error as DbError;
use indicatif::ProgressBar;
use serde_json::json;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// import

/// One item of the input, decoded.
enum Item {
    Doc(String, Value),
    Kv {
        ns: String,
        key: Vec<u8>,
        value: Vec<u8>,
        tags: Vec<String>,
    },
    Index {
        coll: String,
        name: String,
        fields: Vec<String>,
        unique: bool,
        partial: Option<Value>,
    },
    Schema(String, Value),
}

fn bad(msg: impl Into<String>) -> CliError {
    CliError::usage(msg)
}

fn text_or_bytes(v: Option<&Value>, what: &str) -> Res<Vec<u8>> {
    match v {
        Some(Value::Str(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Bytes(b)) => Ok(b.clone()),
        _ => Err(bad(format!(
            "`{what}` must be a string or {{\"$binary\":\"<base64>\"}}"
        ))),
    }
}

fn string_field(m: &cairndb::value::Map, f: &str) -> Res<String> {
    m.get(f)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| bad(format!("`{f}` must be a string")))
}

/// An item of an export file.
fn export_item(v: Value) -> Res<Item> {
    let Value::Map(mut m) = v else {
        return Err(bad("an export record is a JSON object"));
    };
    if let Some(doc) = m.remove("doc") {
        let coll = string_field(&m, "collection")?;
        if doc.as_map().is_none() {
            return Err(bad("`doc` must be an object"));
        }
        return Ok(Item::Doc(coll, doc));
    }
    if m.contains_key("namespace") {
        let tags = match m.get("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| t.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("`tags` must be an array of strings"))?,
            Some(_) => return Err(bad("`tags` must be an array of strings")),
        };
        return Ok(Item::Kv {
            ns: string_field(&m, "namespace")?,
            key: text_or_bytes(m.get("key"), "key")?,
            value: text_or_bytes(m.get("value"), "value")?,
            tags,
        });
    }
    if m.contains_key("index") {
        let fields = m
            .get("fields")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .map(|f| f.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad("`fields` must be an array of strings"))?;
        return Ok(Item::Index {
            coll: string_field(&m, "collection")?,
            name: string_field(&m, "index")?,
            fields,
            unique: m.get("unique").and_then(Value::as_bool).unwrap_or(false),
            partial: m.remove("partial").filter(|p| !p.is_null()),
        });
    }
    if let Some(schema) = m.remove("schema") {
        return Ok(Item::Schema(string_field(&m, "collection")?, schema));
    }
    Err(bad(
        "not an export record ({\"collection\",\"doc\"}, {\"namespace\",\"key\",\"value\"}, \
         index or schema); give --collection to import plain documents",
    ))
}

/// Writes items in transactions as large as one commit holds.
struct Loader<'a> {
    s: &'a mut Session,
    pending: PendingTxn,
    /// Items in `pending`.
    held: u64,
    imported: u64,
    skipped_system: u64,
    deferred: Vec<Item>,
}

impl Loader<'_> {
    fn commit(&mut self) -> Result<(), DbError> {
        let p = std::mem::take(&mut self.pending);
        if !p.is_empty() {
            self.s.db.resume(p).commit()?;
        }
        self.imported += self.held;
        self.held = 0;
        Ok(())
    }

    /// One write into the open transaction; a full transaction is committed and the write
    /// retried in a new one. A failed write leaves the transaction as it was.
    fn write(&mut self, item: &Item) -> Result<(), DbError> {
        for attempt in 0..2 {
            let mut t = self.s.db.resume(std::mem::take(&mut self.pending));
            let r = match item {
                Item::Doc(coll, doc) => t.insert(coll, doc).map(|_| ()),
                Item::Kv {
                    ns,
                    key,
                    value,
                    tags,
                } => {
                    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                    let wo = WriteOptions {
                        ttl: None,
                        tags: &tags,
                    };
                    t.kv_put_with(ns, key, value, &wo)
                }
                _ => Ok(()),
            };
            self.pending = t.suspend();
            match r {
                Ok(()) => {
                    self.held += 1;
                    return Ok(());
                }
                Err(DbError::TxnTooLarge) if attempt == 0 && !self.pending.is_empty() => {
                    self.commit()?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(DbError::TxnTooLarge)
    }

    fn item(&mut self, item: Item) -> Result<(), DbError> {
        match &item {
            Item::Doc(c, _) if c.starts_with('_') => {
                self.skipped_system += 1;
                Ok(())
            }
            Item::Doc(..) | Item::Kv { .. } => self.write(&item),
            // After the data: an index is filled once, a schema does not judge old documents.
            Item::Index { .. } | Item::Schema(..) => {
                self.deferred.push(item);
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Res<u64> {
        let ro = self.s.read_only;
        self.commit().map_err(|e| db_err_ro(ro, e))?;
        let mut kept = 0u64;
        for item in std::mem::take(&mut self.deferred) {
            match item {
                Item::Index {
                    coll,
                    name,
                    fields,
                    unique,
                    partial,
                } => {
                    if coll.starts_with('_') {
                        continue;
                    }
                    let f: Vec<&str> = fields.iter().map(String::as_str).collect();
                    let spec = IndexSpec {
                        fields: &f,
                        unique,
                        partial: partial.as_ref(),
                    };
                    match self.s.db.create_index(&coll, &name, &spec) {
                        Ok(()) => self.imported += 1,
                        Err(DbError::Exists) => kept += 1,
                        Err(e) => {
                            return Err(db_err_ro(ro, e).context(format!("index {coll}.{name}")))
                        }
                    }
                }
                Item::Schema(coll, schema) => {
                    if coll.starts_with('_') {
                        continue;
                    }
                    self.s
                        .db
                        .set_schema(&coll, Some(&schema))
                        .map_err(|e| db_err_ro(ro, e).context(format!("schema of {coll}")))?;
                    self.imported += 1;
                }
                _ => {}
            }
        }
        Ok(kept)
    }
}

/// The error for item `n` (a line or array position) of the input.
fn item_err(e: DbError, ro: bool, at: &str) -> CliError {
    let msg = match e {
        DbError::Json => "invalid JSON".to_string(),
        DbError::TooLarge => "too large (over --max-doc-bytes or --max-value-len)".to_string(),
        DbError::InvalidName => "invalid collection, namespace or key name".to_string(),
        DbError::InvalidArgument => "not an object, or bad `_tags`".to_string(),
        DbError::Unique => "a unique index already holds its value".to_string(),
        DbError::SchemaViolation => "violates the collection's schema".to_string(),
        e => db_err_ro(ro, e).msg,
    };
    CliError::new(code_of(e), format!("{at}: {msg}"))
}

pub fn import(s: &mut Session, a: &ImportArgs, out: &Out, opts: &ImageOpts) -> Res<()> {
    let stdin = a.input.as_os_str() == "-";
    let (reader, total): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = File::open(&a.input).map_err(|e| io_err(&a.input, e))?;
        let len = f.metadata().map(|m| m.len()).ok();
        (Box::new(f), len)
    };
    let mut input = BufReader::with_capacity(1 << 16, reader);
    let name = if stdin {
        "stdin".to_string()
    } else {
        a.input.display().to_string()
    };
    let bar = out.bar(total, "importing", true);
    let started = std::time::Instant::now();
    let ro = s.read_only;
    let depth = opts.config.max_depth;
    let mut loader = Loader {
        s,
        pending: PendingTxn::default(),
        held: 0,
        imported: 0,
        skipped_system: 0,
        deferred: Vec::new(),
    };
    let mut failed = 0u64;
    let mut first_error: Option<CliError> = None;
    // Decode one item; a document of `--collection`, or an export record.
    let decode = |v: Value| -> Res<Item> {
        match &a.collection {
            Some(c) => {
                if v.as_map().is_none() {
                    return Err(bad("a document is a JSON object"));
                }
                Ok(Item::Doc(c.clone(), v))
            }
            None => export_item(v),
        }
    };
    let mut handle = |loader: &mut Loader<'_>, at: String, item: Res<Item>| -> Res<()> {
        let r = item.and_then(|it| loader.item(it).map_err(|e| item_err(e, ro, &at)));
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = if e.msg.starts_with(&at) {
                    e
                } else {
                    e.context(&at)
                };
                if a.keep_going {
                    failed += 1;
                    bar.suspend(|| eprintln!("cairn: warning: skipped {}", e.msg));
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    };
    let head = input
        .fill_buf()
        .map_err(|e| CliError::failed(format!("{name}: {e}")))?;
    let is_array = head
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[');
    let result: Res<()> = (|| {
        if is_array {
            // A JSON array is read whole; JSON lines stream.
            let mut text = String::new();
            input
                .read_to_string(&mut text)
                .map_err(|e| CliError::usage(format!("{name}: {e}")))?;
            bar.set_position(text.len() as u64);
            let items: Vec<serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| CliError::usage(format!("{name}: invalid JSON array: {e}")))?;
            bar.set_length(items.len() as u64);
            bar.set_position(0);
            if let Ok(st) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:32}] {pos}/{len} {per_sec} eta {eta}",
            ) {
                bar.set_style(st.progress_chars("=> "));
            }
            for (i, j) in items.iter().enumerate() {
                let at = format!("{name}: item {}", i + 1);
                let item = value::from_json(j.to_string().as_bytes(), depth)
                    .map_err(|e| item_err(e, ro, &at))
                    .and_then(&decode);
                handle(&mut loader, at, item)?;
                bar.inc(1);
            }
            return Ok(());
        }
        let mut line = String::new();
        let mut no = 0u64;
        loop {
            line.clear();
            let n = input
                .read_line(&mut line)
                .map_err(|e| CliError::usage(format!("{name}: line {}: {e}", no + 1)))?;
            if n == 0 {
                return Ok(());
            }
            no += 1;
            bar.inc(n as u64);
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{name}: line {no}");
            let item = value::from_json(line.trim().as_bytes(), depth)
                .map_err(|e| item_err(e, ro, &at))
                .and_then(&decode);
            handle(&mut loader, at, item)?;
        }
    })();
    // Whatever was read before an error stays imported (it is committed in batches anyway).
    let finished = loader.finish();
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let imported = loader.imported;
    let report = |kept: u64| {
        json!({"imported": imported, "failed": failed, "skipped_system": loader.skipped_system,
               "indexes_kept": kept, "seconds": secs})
    };
    match (result, finished) {
        (Err(e), _) => {
            let note = format!("{imported} item(s) before it were imported");
            Err(CliError::new(e.code, format!("{}; {note}", e.msg)))
        }
        (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(kept)) => {
            out.emit(report(kept), || {
                let mut t = format!(
                    "imported {imported} item(s) in {secs:.2} s ({:.0}/s)",
                    imported as f64 / secs.max(1e-9)
                );
                if loader.skipped_system > 0 {
                    t.push_str(&format!(
                        "; {} item(s) of system collections skipped",
                        loader.skipped_system
                    ));
                }
                if kept > 0 {
                    t.push_str(&format!("; {kept} existing index(es) kept"));
                }
                if failed > 0 {
                    t.push_str(&format!("; {failed} failed (see above)"));
                }
                t
            });
            match first_error {
                Some(e) if failed > 0 => Err(CliError::new(
                    e.code,
                    format!("{failed} item(s) failed, the first: {}", e.msg),
                )),
                _ => Ok(()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// export

/// The collections an export covers, and whether it covers key-value entries.
fn scope(s: &mut Session, a: &ExportArgs) -> Res<(Vec<String>, Vec<String>)> {
    let ro = s.read_only;
    let all = s.db.collections().map_err(|e| db_err_ro(ro, e))?;
    let colls = if a.collection.is_empty() {
        all
    } else {
        for c in &a.collection {
            if !all.contains(c) {
                return Err(CliError::not_found(format!("no collection {c}")));
            }
        }
        a.collection.clone()
    };
    let spaces = if a.no_kv || !a.collection.is_empty() {
        Vec::new()
    } else {
        s.db.namespaces().map_err(|e| db_err_ro(ro, e))?
    };
    Ok((colls, spaces))
}

fn total_items(s: &mut Session, colls: &[String]) -> Res<u64> {
    let ro = s.read_only;
    let mut n = 0u64;
    for c in colls {
        n += s.db.count(c).map_err(|e| db_err_ro(ro, e))?;
    }
    Ok(n)
}

pub fn export(s: &mut Session, a: &ExportArgs, out: &Out) -> Res<()> {
    let to_stdout = a.output.as_os_str() == "-";
    let format = a.format.unwrap_or_else(|| {
        let ext = a
            .output
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(ext.as_str(), "db" | "sqlite" | "sqlite3") {
            ExportFormat::Sqlite
        } else {
            ExportFormat::Jsonl
        }
    });
    if to_stdout && format == ExportFormat::Sqlite {
        return Err(CliError::usage("a SQLite export needs a file, not stdout"));
    }
    if !to_stdout && a.output.exists() {
        if !a.force {
            return Err(CliError::failed(format!(
                "{}: exists already (give --force to overwrite it)",
                a.output.display()
            )));
        }
        std::fs::remove_file(&a.output).map_err(|e| io_err(&a.output, e))?;
    }
    let (colls, spaces) = scope(s, a)?;
    let total = total_items(s, &colls)?;
    let bar = out.bar(Some(total), "exporting", false);
    let started = std::time::Instant::now();
    let r = match format {
        ExportFormat::Jsonl => export_jsonl(s, &a.output, to_stdout, &colls, &spaces, &bar),
        ExportFormat::Sqlite => export_sqlite(s, &a.output, &colls, &spaces, &bar),
    };
    bar.finish_and_clear();
    let (docs, keys) = match r {
        Ok(x) => x,
        Err(e) => {
            if !to_stdout {
                let _ = std::fs::remove_file(&a.output);
            }
            return Err(e);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    if !to_stdout {
        out.emit(
            json!({"documents": docs, "keys": keys, "collections": colls.len(),
                   "namespaces": spaces.len(), "seconds": secs,
                   "format": format!("{format:?}").to_lowercase()}),
            || {
                format!(
                    "exported {docs} document(s) of {} collection(s) and {keys} key(s) of {} \
                     namespace(s) to {} in {secs:.2} s",
                    colls.len(),
                    spaces.len(),
                    a.output.display()
                )
            },
        );
    }
    Ok(())
}

fn w_err(path: &Path, e: std::io::Error) -> CliError {
    CliError::failed(format!("{}: {e}", path.display()))
}

fn export_jsonl(
    s: &mut Session,
    path: &Path,
    to_stdout: bool,
    colls: &[String],
    spaces: &[String],
    bar: &ProgressBar,
) -> Res<(u64, u64)> {
    let ro = s.read_only;
    let e = |e| db_err_ro(ro, e);
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(path).map_err(|e| io_err(path, e))?)
    };
    let mut w = BufWriter::with_capacity(1 << 16, sink);
    let (mut docs, mut keys) = (0u64, 0u64);
    let mut werr: Option<std::io::Error> = None;
    for c in colls {
        let qc = quote(c);
        for i in s.db.list_indexes(c).map_err(e)? {
            let line = json!({"collection": c, "index": i.name, "fields": i.fields,
                              "unique": i.unique, "partial": i.partial.as_ref().map(to_serde)});
            writeln!(w, "{line}").map_err(|x| w_err(path, x))?;
        }
        if let Some(schema) = s.db.schema(c).map_err(e)? {
            writeln!(w, "{{\"collection\":{qc},\"schema\":{}}}", to_json(&schema))
                .map_err(|x| w_err(path, x))?;
        }
        s.db.for_each_doc(c, &mut |d| {
            docs += 1;
            bar.inc(1);
            match writeln!(w, "{{\"collection\":{qc},\"doc\":{}}}", to_json(&d)) {
                Ok(()) => Ok(true),
                Err(x) => {
                    werr = Some(x);
                    Ok(false)
                }
            }
        })
        .map_err(e)?;
        if let Some(x) = werr.take() {
            return Err(w_err(path, x));
        }
    }
    for ns in spaces {
        let qn = quote(ns);
        for k in keys_of(s, ns, b"")? {
            let Some(entry) = s.db.kv_get_entry(ns, &k).map_err(e)? else {
                continue; // expired between the listing and the read
            };
            let tags = if entry.tags.is_empty() {
                String::new()
            } else {
                format!(",\"tags\":{}", json!(entry.tags))
            };
            writeln!(
                w,
                "{{\"namespace\":{qn},\"key\":{},\"value\":{}{tags}}}",
                bytes_json(&k),
                bytes_json(&entry.value)
            )
            .map_err(|x| w_err(path, x))?;
            keys += 1;
        }
    }
    w.flush().map_err(|x| w_err(path, x))?;
    Ok((docs, keys))
}

/// A document field as a SQLite value: scalars as themselves, arrays and objects as JSON text.
fn sql_value(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::Bool(b) => S::Integer(i64::from(*b)),
        Value::Int(i) => S::Integer(*i),
        Value::Float(f) => S::Real(*f),
        Value::Str(s) => S::Text(s.clone()),
        Value::Bytes(b) => S::Blob(b.clone()),
        Value::Array(_) | Value::Map(_) => S::Text(to_json(v)),
    }
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Columns past this many stay in `_doc` only (SQLite allows 2000 per table).
const MAX_COLUMNS: usize = 1000;
const FIXED_COLUMNS: [&str; 5] = ["_id", "_ver", "_ts", "_exp", "_doc"];

fn export_sqlite(
    s: &mut Session,
    path: &Path,
    colls: &[String],
    spaces: &[String],
    bar: &ProgressBar,
) -> Res<(u64, u64)> {
    let ro = s.read_only;
    let e = |e| db_err_ro(ro, e);
    let sq = |x: rusqlite::Error| CliError::failed(format!("{}: SQLite: {x}", path.display()));
    let conn = rusqlite::Connection::open(path).map_err(sq)?;
    conn.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN;")
        .map_err(sq)?;
    let (mut docs, mut keys) = (0u64, 0u64);
    for c in colls {
        let table = ident(c);
        conn.execute_batch(&format!(
            "CREATE TABLE {table} (\"_id\" INTEGER PRIMARY KEY, \"_ver\" INTEGER, \
             \"_ts\" INTEGER, \"_exp\" INTEGER, \"_doc\" TEXT NOT NULL);"
        ))
        .map_err(|x| sq(x).context(format!("collection {c}")))?;
        // Columns in order; SQLite compares names without case, so a field differing from a
        // column only in case stays in `_doc`.
        let mut cols: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_string()).collect();
        let mut sql = String::new();
        let mut failure: Option<CliError> = None;
        s.db.for_each_doc(c, &mut |d| {
            let Some(m) = d.as_map() else {
                return Ok(true);
            };
            for (k, _) in m.iter() {
                if cols.len() < MAX_COLUMNS && !cols.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    if let Err(x) =
                        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {};", ident(k)))
                    {
                        failure = Some(sq(x));
                        return Ok(false);
                    }
                    cols.push(k.to_string());
                    sql.clear();
                }
            }
            if sql.is_empty() {
                let names: Vec<String> = cols.iter().map(|c| ident(c)).collect();
                let marks = vec!["?"; cols.len()].join(",");
                sql = format!("INSERT INTO {table} ({}) VALUES ({marks})", names.join(","));
            }
            let vals: Vec<rusqlite::types::Value> = cols
                .iter()
                .map(|col| {
                    if col == "_doc" {
                        rusqlite::types::Value::Text(to_json(&d))
                    } else {
                        m.get(col)
                            .map(sql_value)
                            .unwrap_or(rusqlite::types::Value::Null)
                    }
                })
                .collect();
            let r = conn
                .prepare_cached(&sql)
                .and_then(|mut st| st.execute(rusqlite::params_from_iter(vals)));
            if let Err(x) = r {
                failure = Some(sq(x));
                return Ok(false);
            }
            docs += 1;
            bar.inc(1);
            Ok(true)
        })
        .map_err(e)?;
        if let Some(f) = failure {
            return Err(f.context(format!("collection {c}")));
        }
        // The collection's indexes on plain columns, for the analysis queries.
        for i in s.db.list_indexes(c).map_err(e)? {
            if i.partial.is_none() && i.fields.iter().all(|f| cols.contains(f)) {
                let fields: Vec<String> = i.fields.iter().map(|f| ident(f)).collect();
                conn.execute_batch(&format!(
                    "CREATE INDEX {} ON {table} ({});",
                    ident(&format!("{c}.{}", i.name)),
                    fields.join(",")
                ))
                .map_err(sq)?;
            }
        }
    }
    if !spaces.is_empty() {
        conn.execute_batch(
            "CREATE TABLE \"_kv\" (namespace TEXT NOT NULL, key BLOB NOT NULL, \
             value BLOB NOT NULL, key_text TEXT, value_text TEXT, expires INTEGER, tags TEXT, \
             PRIMARY KEY (namespace, key));",
        )
        .map_err(sq)?;
        for ns in spaces {
            for k in keys_of(s, ns, b"")? {
                let Some(entry) = s.db.kv_get_entry(ns, &k).map_err(e)? else {
                    continue;
                };
                let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_string);
                let tags = (!entry.tags.is_empty()).then(|| json!(entry.tags).to_string());
                let expires = entry.expires.and_then(|x| i64::try_from(x).ok());
                conn.prepare_cached(
                    "INSERT INTO \"_kv\" (namespace, key, value, key_text, value_text, \
                     expires, tags) VALUES (?,?,?,?,?,?,?)",
                )
                .and_then(|mut st| {
                    st.execute(rusqlite::params![
                        ns,
                        k,
                        entry.value,
                        text(&k),
                        text(&entry.value),
                        expires,
                        tags
                    ])
                })
                .map_err(sq)?;
                keys += 1;
            }
        }
    }
    conn.execute_batch("COMMIT;").map_err(sq)?;
    Ok((docs, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmds::clip;
    use crate::error::EXIT_USAGE;

    fn item(text: &str) -> Res<Item> {
        export_item(value::from_json(text.as_bytes(), 16).unwrap())
    }

    #[test]
    fn export_records_decode() {
        match item(r#"{"collection":"r","doc":{"a":1}}"#).unwrap() {
            Item::Doc(c, d) => {
                assert_eq!(c, "r");
                assert_eq!(to_json(&d), r#"{"a":1}"#);
            }
            _ => panic!("not a document"),
        }
        match item(r#"{"namespace":"n","key":{"$binary":"/wA="},"value":"v","tags":["t"]}"#)
            .unwrap()
        {
            Item::Kv {
                ns,
                key,
                value,
                tags,
            } => {
                assert_eq!(
                    (ns.as_str(), key, value),
                    ("n", vec![0xff, 0], b"v".to_vec())
                );
                assert_eq!(tags, vec!["t".to_string()]);
            }
            _ => panic!("not a key"),
        }
        match item(r#"{"collection":"r","index":"by_t","fields":["t"],"unique":true}"#).unwrap() {
            Item::Index {
                name,
                fields,
                unique,
                partial,
                ..
            } => {
                assert_eq!(name, "by_t");
                assert_eq!(fields, vec!["t".to_string()]);
                assert!(unique && partial.is_none());
            }
            _ => panic!("not an index"),
        }
        assert_eq!(item(r#"{"a":1}"#).err().map(|e| e.code), Some(EXIT_USAGE));
        assert_eq!(
            item(r#"{"namespace":"n","key":3,"value":"v"}"#)
                .err()
                .map(|e| e.code),
            Some(EXIT_USAGE)
        );
        assert!(clip("x").len() == 1);
    }
}
