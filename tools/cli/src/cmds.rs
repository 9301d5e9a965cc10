//! The commands that read and write documents, key-value entries and indexes, and describe the
//! image.

use crate::cli::{
    DeleteArgs, FindArgs, IndexCmd, KvCmd, LfsCmd, LsArgs, LsWhat, OutFormat, SchemaArgs,
};
use crate::error::{io_err, CliError, Res};
use crate::image::{self, encryption_text, ImageOpts, Session};
use crate::keys::{parse_hex, to_hex};
use crate::out::{bytes_json, table, to_json, to_serde, write_stdout, Out};
use cairndb::db::{IndexSpec, Level, WriteOptions};
use cairndb::lfs::EntryKind;
use cairndb::query::{FindOptions, Order, Projection};
use cairndb::value::{self, Value};
use cairndb::Error as DbError;
use serde_json::json;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

/// JSON text given on the command line, parsed with the database's depth limit.
pub fn parse_json(text: &str, what: &str, max_depth: usize) -> Res<Value> {
    value::from_json(text.as_bytes(), max_depth).map_err(|e| {
        CliError::usage(format!(
            "{what}: {} in {}",
            match e {
                DbError::TooDeep => "nested too deeply".to_string(),
                _ => "invalid JSON".to_string(),
            },
            clip(text)
        ))
    })
}

/// A JSON object given on the command line (documents, patches, filters).
pub fn parse_object(text: &str, what: &str, max_depth: usize) -> Res<Value> {
    let v = parse_json(text, what, max_depth)?;
    if v.as_map().is_none() {
        return Err(CliError::usage(format!(
            "{what}: a JSON object is needed, not {}",
            clip(text)
        )));
    }
    Ok(v)
}

/// At most 60 characters of `s`, for messages.
pub fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A key-value key from the command line: text, or hex with `hex`.
pub fn kv_bytes(text: &str, hex: bool, what: &str) -> Res<Vec<u8>> {
    if hex {
        parse_hex(text).map_err(|e| CliError::usage(format!("{what}: {e}")))
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

/// A key for display: text when it is UTF-8 without control characters, else hex.
fn show_bytes(b: &[u8], hex: bool) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !hex && !s.chars().any(char::is_control) => s.to_string(),
        _ => to_hex(b),
    }
}

fn depth(opts: &ImageOpts) -> usize {
    opts.config.max_depth
}

// ---------------------------------------------------------------------------------------------
// info, stats, ls

pub fn info(s: &mut Session, out: &Out) -> Res<()> {
    let ro = s.read_only;
    let e = |e| crate::error::db_err_ro(ro, e);
    let g = s.geometry;
    let h = s.header;
    // User collections; the system's (the event log) are counted apart.
    let (mut colls, mut docs, mut events) = (Vec::new(), 0u64, 0u64);
    for c in s.db.collections().map_err(e)? {
        let n = s.db.count(&c).map_err(e)?;
        if c.starts_with('_') {
            events += n;
        } else {
            docs += n;
            colls.push(c);
        }
    }
    let namespaces = s.db.namespaces().map_err(e)?;
    let space = s.db.space().map_err(e)?;
    let st = s.db.stats();
    let now = s.db.now().map_err(e)?;
    let last = s.db.last_backup().map_err(e)?;
    let garbage = s.db.garbage_percent();
    let compress = cfg!(feature = "compress");
    let sb = s.superblock;
    let j = json!({
        "image": s.path.display().to_string(),
        "bytes": g.capacity(),
        "geometry": {"block_size": g.block_size, "block_count": g.block_count,
                     "read_size": g.read_size, "prog_size": g.prog_size},
        "littlefs": sb.map(|sb| json!({"version": sb.version_text(), "name_max": sb.name_max,
                     "file_max": sb.file_max, "attr_max": sb.attr_max})),
        "format_version": h.version,
        "encrypted": h.flags & cairndb::format::FLAG_ENCRYPTED != 0,
        "passphrase": h.flags & cairndb::format::FLAG_PASSPHRASE != 0,
        "kdf_iterations": h.kdf_iterations,
        "encryption": encryption_text(&h),
        "generation": h.generation,
        "collections": colls.len(),
        "documents": docs,
        "events": events,
        "namespaces": namespaces.len(),
        "used_blocks": space.used_blocks,
        "free_blocks": space.free_blocks,
        "segments": st.segments,
        "segment_bytes": st.segment_bytes,
        "memtable_bytes": st.memtable_bytes,
        "garbage_percent": garbage,
        "database_time": now,
        "last_backup": last.map(|b| json!({"kind": format!("{:?}", b.kind).to_lowercase(),
                     "end_seq": b.end_seq, "created": b.created})),
        "cairn_reads_compressed_pages": compress,
    });
    out.emit(j, || {
        let mut t = String::new();
        let mut row = |k: &str, v: String| t.push_str(&format!("{k:<13} {v}\n"));
        row(
            "image",
            format!("{} ({} bytes)", s.path.display(), g.capacity()),
        );
        row(
            "geometry",
            format!(
                "{} blocks of {} bytes; read size {}, program size {}",
                g.block_count, g.block_size, g.read_size, g.prog_size
            ),
        );
        if let Some(sb) = sb {
            row(
                "littlefs",
                format!(
                    "v{} (name_max {}, file_max {}, attr_max {})",
                    sb.version_text(),
                    sb.name_max,
                    sb.file_max,
                    sb.attr_max
                ),
            );
        }
        row(
            "format",
            format!("cairndb v{}, root generation {}", h.version, h.generation),
        );
        row("encryption", encryption_text(&h));
        row(
            "contents",
            format!(
                "{} collection(s), {} document(s), {} namespace(s); {} event(s) in the log",
                colls.len(),
                docs,
                namespaces.len(),
                events
            ),
        );
        row(
            "space",
            format!(
                "{} of {} blocks used, {} free",
                space.used_blocks, space.block_count, space.free_blocks
            ),
        );
        row(
            "store",
            format!(
                "{} segment(s), {} segment bytes, {} bytes in the log; {}% garbage",
                st.segments, st.segment_bytes, st.memtable_bytes, garbage
            ),
        );
        row("time", format!("{now} (database time)"));
        row(
            "last backup",
            match last {
                Some(b) => format!(
                    "{:?} up to sequence {}, at time {}",
                    b.kind, b.end_seq, b.created
                )
                .to_lowercase(),
                None => "none".into(),
            },
        );
        t
    });
    Ok(())
}

pub fn stats(s: &mut Session, out: &Out) -> Res<()> {
    let ro = s.read_only;
    let e = |e| crate::error::db_err_ro(ro, e);
    let st = s.db.statistics().map_err(e)?;
    let mut colls = Vec::new();
    for c in s.db.collections().map_err(e)? {
        let cs = s.db.collection_stats(&c).map_err(e)?;
        colls.push((c, cs));
    }
    let mut spaces = Vec::new();
    for ns in s.db.namespaces().map_err(e)? {
        let n = count_keys(s, &ns)?;
        spaces.push((ns, n));
    }
    let j = json!({
        "space": {"block_size": st.space.block_size, "block_count": st.space.block_count,
                  "used_blocks": st.space.used_blocks, "free_blocks": st.space.free_blocks},
        "store": {"segments": st.stats.segments, "segment_bytes": st.stats.segment_bytes,
                  "memtable_bytes": st.stats.memtable_bytes},
        "expired_removed": st.expired_removed,
        "collections": colls.iter().map(|(n, c)| json!({"name": n, "documents": c.docs,
            "bytes": c.bytes, "max_docs": c.max_docs, "max_bytes": c.max_bytes,
            "evicted": c.evicted})).collect::<Vec<_>>(),
        "namespaces": spaces.iter().map(|(n, k)| json!({"name": n, "keys": k}))
            .collect::<Vec<_>>(),
    });
    out.emit(j, || {
        let mut t = format!(
            "space        {} of {} blocks of {} bytes used ({} free)\n\
             store        {} segment(s), {} segment bytes, {} bytes in the log\n\
             expired      {} item(s) removed by sweeps\n",
            st.space.used_blocks,
            st.space.block_count,
            st.space.block_size,
            st.space.free_blocks,
            st.stats.segments,
            st.stats.segment_bytes,
            st.stats.memtable_bytes,
            st.expired_removed
        );
        for (n, c) in &colls {
            let caps = match (c.max_docs, c.max_bytes) {
                (None, None) => String::new(),
                (d, b) => format!(
                    ", capped at {} docs / {} bytes, {} evicted",
                    d.map_or("-".into(), |v| v.to_string()),
                    b.map_or("-".into(), |v| v.to_string()),
                    c.evicted
                ),
            };
            t.push_str(&format!(
                "collection   {n}: {} document(s), {} bytes{caps}\n",
                c.docs, c.bytes
            ));
        }
        for (n, k) in &spaces {
            t.push_str(&format!("namespace    {n}: {k} key(s)\n"));
        }
        t
    });
    Ok(())
}

fn count_keys(s: &mut Session, ns: &str) -> Res<u64> {
    let mut n = 0u64;
    let ro = s.read_only;
    s.db.kv_keys(ns, b"", &mut |_| {
        n += 1;
        Ok(true)
    })
    .map_err(|e| crate::error::db_err_ro(ro, e))?;
    Ok(n)
}

/// Keys of `ns` with `prefix`, in order.
pub fn keys_of(s: &mut Session, ns: &str, prefix: &[u8]) -> Res<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let ro = s.read_only;
    s.db.kv_keys(ns, prefix, &mut |k| {
        keys.push(k.to_vec());
        Ok(true)
    })
    .map_err(|e| crate::error::db_err_ro(ro, e))?;
    Ok(keys)
}

pub fn ls(s: &mut Session, a: &LsArgs, out: &Out, opts: &ImageOpts) -> Res<()> {
    let ro = s.read_only;
    let e = |e| crate::error::db_err_ro(ro, e);
    let need_name = |what: &str| -> Res<String> {
        a.name
            .clone()
            .ok_or_else(|| CliError::usage(format!("ls {what}: give the collection or namespace")))
    };
    match a.what {
        None | Some(LsWhat::Collections) | Some(LsWhat::Namespaces) => {
            let mut colls = Vec::new();
            if a.what != Some(LsWhat::Namespaces) {
                for c in s.db.collections().map_err(e)? {
                    let n = s.db.count(&c).map_err(e)?;
                    colls.push((c, n));
                }
            }
            let mut spaces = Vec::new();
            if a.what != Some(LsWhat::Collections) {
                for ns in s.db.namespaces().map_err(e)? {
                    let n = count_keys(s, &ns)?;
                    spaces.push((ns, n));
                }
            }
            let j = json!({
                "collections": colls.iter().map(|(n, c)| json!({"name": n, "documents": c}))
                    .collect::<Vec<_>>(),
                "namespaces": spaces.iter().map(|(n, c)| json!({"name": n, "keys": c}))
                    .collect::<Vec<_>>(),
            });
            out.emit(j, || {
                let mut t = String::new();
                for (n, c) in &colls {
                    t.push_str(&format!("collection  {n}  ({c} documents)\n"));
                }
                for (n, c) in &spaces {
                    t.push_str(&format!("namespace   {n}  ({c} keys)\n"));
                }
                t
            });
            Ok(())
        }
        Some(LsWhat::Indexes) => index_list(s, a.name.as_deref(), out),
        Some(LsWhat::Tags) => {
            let coll = need_name("tags")?;
            let mut tags = Vec::new();
            s.db.tag_counts(&coll, &mut |t, n| {
                tags.push((t.to_string(), n));
                Ok(true)
            })
            .map_err(e)?;
            let j = json!(tags
                .iter()
                .map(|(t, n)| json!({"tag": t, "documents": n}))
                .collect::<Vec<_>>());
            out.emit(j, || {
                tags.iter()
                    .map(|(t, n)| format!("{t}  ({n} documents)\n"))
                    .collect()
            });
            Ok(())
        }
        Some(LsWhat::Keys) => {
            let ns = need_name("keys")?;
            kv_ls(s, &ns, a.prefix.as_deref(), a.hex, out)
        }
        Some(LsWhat::Events) => {
            let events = s.db.events(Level::Debug, a.limit).map_err(e)?;
            let j = json!(events
                .iter()
                .map(
                    |ev| json!({"id": ev.id, "level": format!("{:?}", ev.level).to_lowercase(),
                    "code": ev.code, "msg": ev.msg, "ts": ev.ts})
                )
                .collect::<Vec<_>>());
            out.emit(j, || {
                events
                    .iter()
                    .map(|ev| {
                        format!(
                            "#{} t={} {:<5} code {}: {}\n",
                            ev.id,
                            ev.ts,
                            format!("{:?}", ev.level).to_lowercase(),
                            ev.code,
                            ev.msg
                        )
                    })
                    .collect()
            });
            Ok(())
        }
        Some(LsWhat::Files) => lfs(
            &s.path.clone(),
            &LfsCmd::Ls {
                path: a.name.clone().unwrap_or_else(|| "/".into()),
            },
            out,
            opts,
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// documents

/// Find options from the command line.
pub fn find_options(a: &FindArgs) -> Res<FindOptions> {
    let mut sort = Vec::new();
    for k in a.sort.iter().filter(|k| !k.is_empty()) {
        let (path, order) = if let Some(p) = k.strip_prefix('-') {
            (p, Order::Desc)
        } else if let Some(p) = k.strip_suffix(":desc") {
            (p, Order::Desc)
        } else if let Some(p) = k.strip_suffix(":asc") {
            (p, Order::Asc)
        } else {
            (k.strip_prefix('+').unwrap_or(k), Order::Asc)
        };
        sort.push((path.to_string(), order));
    }
    let bad = |e: DbError| CliError::usage(format!("projection: {e}"));
    let projection = if !a.fields.is_empty() {
        let paths: Vec<&str> = a.fields.iter().map(String::as_str).collect();
        Some(Projection::include(&paths, true).map_err(bad)?)
    } else if !a.exclude.is_empty() {
        let paths: Vec<&str> = a.exclude.iter().map(String::as_str).collect();
        Some(Projection::exclude(&paths).map_err(bad)?)
    } else {
        None
    };
    Ok(FindOptions {
        sort,
        skip: a.skip,
        limit: a.limit,
        projection,
    })
}

/// A find error: filter problems are usage errors that name the filter.
fn find_err(ro: bool, e: DbError, filter: &str) -> CliError {
    match e {
        DbError::BadFilter => CliError::usage(format!(
            "invalid filter or options: {} (unknown operator, wrong operand or bad path)",
            clip(filter)
        )),
        DbError::TooLarge => CliError::failed(
            "too many documents to sort in RAM without an index: give --limit, an index on the \
             sort field, or --max-sort-docs",
        ),
        e => crate::error::db_err_ro(ro, e),
    }
}

pub fn find(s: &mut Session, a: &FindArgs, out: &Out, opts: &ImageOpts) -> Res<()> {
    let ro = s.read_only;
    let text = a.filter.as_deref().unwrap_or("{}");
    let filter = parse_object(text, "filter", depth(opts))?;
    let fo = find_options(a)?;
    if a.explain {
        let plan =
            s.db.explain(&a.collection, &filter, &fo)
                .map_err(|e| find_err(ro, e, text))?;
        let j = to_serde(&plan);
        out.emit(j, || to_json(&plan));
        return Ok(());
    }
    if a.count {
        let mut n = 0u64;
        s.db.find(&a.collection, &filter, &fo, &mut |_| {
            n += 1;
            Ok(true)
        })
        .map_err(|e| find_err(ro, e, text))?;
        out.emit(json!({ "count": n }), || n.to_string());
        return Ok(());
    }
    let format = match a.format {
        Some(f) => f,
        None if out.json => OutFormat::Json,
        None if std::io::stdout().is_terminal() => OutFormat::Table,
        None => OutFormat::Jsonl,
    };
    match format {
        OutFormat::Table => {
            let mut docs = Vec::new();
            s.db.find(&a.collection, &filter, &fo, &mut |d| {
                docs.push(d);
                Ok(true)
            })
            .map_err(|e| find_err(ro, e, text))?;
            write_stdout(format!("{}\n", table(&docs)).as_bytes())
                .map_err(|e| CliError::failed(format!("stdout: {e}")))
        }
        OutFormat::Json | OutFormat::Jsonl => {
            let array = format == OutFormat::Json;
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            let mut first = true;
            let mut failed: Option<std::io::Error> = None;
            if array {
                let _ = w.write_all(b"[");
            }
            s.db.find(&a.collection, &filter, &fo, &mut |d| {
                let sep: &[u8] = match (array, first) {
                    (true, true) => b"",
                    (true, false) => b",",
                    (false, _) => b"",
                };
                first = false;
                let r = w
                    .write_all(sep)
                    .and_then(|_| w.write_all(to_json(&d).as_bytes()))
                    .and_then(|_| if array { Ok(()) } else { w.write_all(b"\n") });
                match r {
                    Ok(()) => Ok(true),
                    Err(e) => {
                        failed = Some(e);
                        Ok(false)
                    }
                }
            })
            .map_err(|e| find_err(ro, e, text))?;
            if array {
                let _ = w.write_all(b"]\n");
            }
            let r = match failed {
                Some(e) => Err(e),
                None => w.flush(),
            };
            match r {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(CliError::failed(format!("stdout: {e}")))
                }
                _ => Ok(()),
            }
        }
    }
}

/// Delete the matches of `filter` a few per commit.
fn delete_batched(s: &mut Session, coll: &str, filter: &Value) -> Result<u64, DbError> {
    let opts = FindOptions {
        limit: Some(8),
        projection: Some(Projection::include(&[], true)?),
        ..FindOptions::default()
    };
    let mut total = 0u64;
    loop {
        let mut ids = Vec::new();
        s.db.find(coll, filter, &opts, &mut |d| {
            if let Some(id) = d
                .as_map()
                .and_then(|m| m.get("_id"))
                .and_then(Value::as_i64)
            {
                ids.push(id as u64);
            }
            Ok(true)
        })?;
        if ids.is_empty() {
            return Ok(total);
        }
        let n = s.db.delete_ids(coll, &ids)?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

fn missing_doc(coll: &str, id: u64) -> CliError {
    CliError::not_found(format!("no document {id} in collection {coll}"))
}

pub fn get(s: &mut Session, coll: &str, id: u64, out: &Out) -> Res<()> {
    let ro = s.read_only;
    match s
        .db
        .get(coll, id)
        .map_err(|e| crate::error::db_err_ro(ro, e))?
    {
        Some(d) => {
            out.emit(to_serde(&d), || to_json(&d));
            Ok(())
        }
        None => Err(missing_doc(coll, id)),
    }
}

/// A document from the argument, or stdin for `-` or nothing.
fn doc_text(arg: Option<&str>) -> Res<String> {
    match arg {
        Some(t) if t != "-" => Ok(t.to_string()),
        _ => {
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .map_err(|e| CliError::failed(format!("stdin: {e}")))?;
            Ok(t)
        }
    }
}

/// A write error with the document's collection and id named where it helps.
fn write_err(ro: bool, e: DbError, coll: &str, id: Option<u64>) -> CliError {
    match (e, id) {
        (DbError::NotFound, Some(id)) => missing_doc(coll, id),
        (DbError::InvalidName, _) => CliError::usage(format!(
            "invalid name `{coll}`: 1 to 32 of [A-Za-z0-9_.-], not starting with `_` (reserved)"
        )),
        (DbError::TooLarge, _) => {
            CliError::failed("too large: the document is over --max-doc-bytes once encoded")
        }
        (DbError::InvalidArgument, _) => CliError::usage(
            "invalid document: an object is needed, `_tags` an array of distinct tags",
        ),
        (e, _) => crate::error::db_err_ro(ro, e),
    }
}

pub fn insert(
    s: &mut Session,
    coll: &str,
    doc: Option<&str>,
    ttl: Option<u64>,
    tags: &[String],
    out: &Out,
    opts: &ImageOpts,
) -> Res<()> {
    let text = doc_text(doc)?;
    let v = parse_object(&text, "document", depth(opts))?;
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    let wo = WriteOptions { ttl, tags: &tags };
    let ro = s.read_only;
    let id = s.db.insert_with(coll, &v, &wo).map_err(|e| {
        if e == DbError::SchemaViolation {
            return schema_err(s, coll);
        }
        write_err(ro, e, coll, None)
    })?;
    out.emit(json!({ "_id": id }), || id.to_string());
    Ok(())
}

fn schema_err(s: &Session, coll: &str) -> CliError {
    match s.db.last_violation() {
        Some(v) => CliError::failed(format!("schema of {coll} violated: {v:?}")),
        None => CliError::failed(format!("schema of {coll} violated")),
    }
}

pub fn patch(
    s: &mut Session,
    coll: &str,
    id: u64,
    patch: &str,
    out: &Out,
    opts: &ImageOpts,
) -> Res<()> {
    let p = parse_object(patch, "patch", depth(opts))?;
    let ro = s.read_only;
    s.db.patch(coll, id, &p).map_err(|e| match e {
        DbError::InvalidPatch => CliError::usage(format!(
            "invalid patch {} (operators: $set $unset $inc $push $pull)",
            clip(patch)
        )),
        DbError::SchemaViolation => schema_err(s, coll),
        e => write_err(ro, e, coll, Some(id)),
    })?;
    out.emit(json!({ "patched": id }), String::new);
    Ok(())
}

pub fn replace(
    s: &mut Session,
    coll: &str,
    id: u64,
    doc: &str,
    out: &Out,
    opts: &ImageOpts,
) -> Res<()> {
    let v = parse_object(doc, "document", depth(opts))?;
    let ro = s.read_only;
    s.db.replace(coll, id, &v).map_err(|e| match e {
        DbError::SchemaViolation => schema_err(s, coll),
        e => write_err(ro, e, coll, Some(id)),
    })?;
    out.emit(json!({ "replaced": id }), String::new);
    Ok(())
}

pub fn delete(s: &mut Session, a: &DeleteArgs, out: &Out, opts: &ImageOpts) -> Res<()> {
    let ro = s.read_only;
    let (coll, ids) = (a.collection.as_str(), a.ids.as_slice());
    if let Some(text) = a.filter.as_deref() {
        let f = parse_object(text, "filter", depth(opts))?;
        let n = if a.batched {
            delete_batched(s, coll, &f).map_err(|e| find_err(ro, e, text))?
        } else {
            s.db.delete_many(coll, &f).map_err(|e| match e {
                DbError::TxnTooLarge => CliError::failed(
                    "too many matches for one commit: give --batched to delete them in several",
                ),
                e => find_err(ro, e, text),
            })?
        };
        out.emit(json!({ "deleted": n }), || format!("{n} deleted"));
        return Ok(());
    }
    let n =
        s.db.delete_ids(coll, ids)
            .map_err(|e| write_err(ro, e, coll, None))?;
    out.emit(json!({ "deleted": n }), || format!("{n} deleted"));
    if n < ids.len() as u64 {
        return Err(CliError::not_found(format!(
            "{} of the {} ids given are not in collection {coll}",
            ids.len() as u64 - n,
            ids.len()
        )));
    }
    Ok(())
}

pub fn drop_collection(s: &mut Session, coll: &str, out: &Out) -> Res<()> {
    let ro = s.read_only;
    s.db.drop_collection(coll).map_err(|e| match e {
        DbError::NotFound => CliError::not_found(format!("no collection {coll}")),
        e => write_err(ro, e, coll, None),
    })?;
    out.emit(json!({ "dropped": coll }), String::new);
    Ok(())
}

pub fn schema(s: &mut Session, a: &SchemaArgs, out: &Out, opts: &ImageOpts) -> Res<()> {
    let ro = s.read_only;
    let coll = a.collection.as_str();
    if a.clear || a.set.is_some() {
        let v = match &a.set {
            Some(text) => Some(parse_object(text, "schema", depth(opts))?),
            None => None,
        };
        s.db.set_schema(coll, v.as_ref()).map_err(|e| match e {
            DbError::BadSchema => CliError::usage(format!(
                "invalid schema (unknown keyword or wrong type): {}",
                clip(a.set.as_deref().unwrap_or(""))
            )),
            e => write_err(ro, e, coll, None),
        })?;
        out.emit(
            json!({ "collection": coll, "schema": a.set.is_some() }),
            String::new,
        );
        return Ok(());
    }
    match s
        .db
        .schema(coll)
        .map_err(|e| write_err(ro, e, coll, None))?
    {
        Some(v) => {
            out.emit(to_serde(&v), || to_json(&v));
            Ok(())
        }
        None => Err(CliError::not_found(format!(
            "collection {coll} has no schema"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// key-value

fn kv_err(ro: bool, e: DbError, ns: &str) -> CliError {
    match e {
        DbError::InvalidName => CliError::usage(format!(
            "invalid namespace `{ns}` or key: names are 1 to 32 of [A-Za-z0-9_.-] not starting \
             with `_`, keys 1 to --max-key-len bytes"
        )),
        DbError::TooLarge => CliError::failed("the value is over --max-value-len"),
        e => crate::error::db_err_ro(ro, e),
    }
}

pub fn kv(s: &mut Session, c: &KvCmd, out: &Out) -> Res<()> {
    let ro = s.read_only;
    match c {
        KvCmd::Get {
            namespace,
            key,
            hex,
            raw,
        } => {
            let k = kv_bytes(key, *hex, "key")?;
            let entry =
                s.db.kv_get_entry(namespace, &k)
                    .map_err(|e| kv_err(ro, e, namespace))?
                    .ok_or_else(|| {
                        CliError::not_found(format!("no key {key} in namespace {namespace}"))
                    })?;
            if *raw && !out.json {
                return write_stdout(&entry.value)
                    .map_err(|e| CliError::failed(format!("stdout: {e}")));
            }
            let j = json!({
                "namespace": namespace,
                "key": serde_json::from_str::<serde_json::Value>(&bytes_json(&k)).unwrap_or_default(),
                "value": serde_json::from_str::<serde_json::Value>(&bytes_json(&entry.value)).unwrap_or_default(),
                "expires": entry.expires,
                "tags": entry.tags,
            });
            out.emit(j, || show_bytes(&entry.value, *hex));
            Ok(())
        }
        KvCmd::Put {
            namespace,
            key,
            value,
            hex,
            value_hex,
            value_file,
            ttl,
            tags,
        } => {
            let k = kv_bytes(key, *hex, "key")?;
            let v = match (value, value_file) {
                (_, Some(p)) => std::fs::read(p).map_err(|e| io_err(p, e))?,
                (Some(v), None) => kv_bytes(v, *hex || *value_hex, "value")?,
                (None, None) => return Err(CliError::usage("kv put: give a value")),
            };
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            let wo = WriteOptions {
                ttl: *ttl,
                tags: &tags,
            };
            s.db.kv_put_with(namespace, &k, &v, &wo)
                .map_err(|e| kv_err(ro, e, namespace))?;
            out.emit(json!({"put": v.len()}), String::new);
            Ok(())
        }
        KvCmd::Delete {
            namespace,
            key,
            hex,
        } => {
            let k = kv_bytes(key, *hex, "key")?;
            let existed =
                s.db.kv_delete(namespace, &k)
                    .map_err(|e| kv_err(ro, e, namespace))?;
            if !existed {
                return Err(CliError::not_found(format!(
                    "no key {key} in namespace {namespace}"
                )));
            }
            out.emit(json!({ "deleted": 1 }), String::new);
            Ok(())
        }
        KvCmd::Ls {
            namespace,
            prefix,
            hex,
        } => kv_ls(s, namespace, prefix.as_deref(), *hex, out),
    }
}

fn kv_ls(s: &mut Session, ns: &str, prefix: Option<&str>, hex: bool, out: &Out) -> Res<()> {
    let p = kv_bytes(prefix.unwrap_or(""), hex, "prefix")?;
    let keys = keys_of(s, ns, &p).map_err(|e| {
        if e.code == crate::error::EXIT_USAGE {
            CliError::usage(format!("invalid namespace `{ns}`"))
        } else {
            e
        }
    })?;
    let j = json!(keys
        .iter()
        .map(|k| serde_json::from_str::<serde_json::Value>(&bytes_json(k)).unwrap_or_default())
        .collect::<Vec<_>>());
    out.emit(j, || {
        keys.iter()
            .map(|k| format!("{}\n", show_bytes(k, hex)))
            .collect()
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// indexes

pub fn index(s: &mut Session, c: &IndexCmd, out: &Out, opts: &ImageOpts) -> Res<()> {
    let ro = s.read_only;
    match c {
        IndexCmd::Create {
            collection,
            name,
            fields,
            unique,
            partial,
        } => {
            let partial = match partial {
                Some(p) => Some(parse_object(p, "partial filter", depth(opts))?),
                None => None,
            };
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            let spec = IndexSpec {
                fields: &fields,
                unique: *unique,
                partial: partial.as_ref(),
            };
            s.db.create_index(collection, name, &spec)
                .map_err(|e| match e {
                    DbError::Exists => {
                        CliError::failed(format!("{collection} has an index {name} already"))
                    }
                    DbError::Unique => CliError::failed(format!(
                        "unique index {name}: two documents of {collection} share a value \
                         (no index was created)"
                    )),
                    DbError::TooLarge => CliError::failed(format!(
                        "{collection} has the most indexes a collection may have"
                    )),
                    DbError::BadFilter => CliError::usage("invalid partial filter"),
                    DbError::InvalidArgument => CliError::usage(
                        "invalid fields: one to four dotted paths without empty parts",
                    ),
                    e => write_err(ro, e, collection, None),
                })?;
            out.emit(json!({"created": name}), String::new);
            Ok(())
        }
        IndexCmd::Drop { collection, name } => {
            s.db.drop_index(collection, name).map_err(|e| match e {
                DbError::NotFound => {
                    CliError::not_found(format!("no index {name} on collection {collection}"))
                }
                e => write_err(ro, e, collection, None),
            })?;
            out.emit(json!({"dropped": name}), String::new);
            Ok(())
        }
        IndexCmd::List { collection } => index_list(s, collection.as_deref(), out),
    }
}

fn index_list(s: &mut Session, coll: Option<&str>, out: &Out) -> Res<()> {
    let ro = s.read_only;
    let colls = match coll {
        Some(c) => vec![c.to_string()],
        None => {
            s.db.collections()
                .map_err(|e| crate::error::db_err_ro(ro, e))?
        }
    };
    let mut rows = Vec::new();
    for c in colls {
        for i in
            s.db.list_indexes(&c)
                .map_err(|e| write_err(ro, e, &c, None))?
        {
            rows.push((c.clone(), i));
        }
    }
    let j = json!(rows
        .iter()
        .map(
            |(c, i)| json!({"collection": c, "name": i.name, "fields": i.fields,
            "unique": i.unique, "multikey": i.multikey,
            "partial": i.partial.as_ref().map(to_serde)})
        )
        .collect::<Vec<_>>());
    out.emit(j, || {
        rows.iter()
            .map(|(c, i)| {
                let mut flags = Vec::new();
                if i.unique {
                    flags.push("unique".to_string());
                }
                if i.multikey {
                    flags.push("multikey".to_string());
                }
                if let Some(p) = &i.partial {
                    flags.push(format!("partial {}", to_json(p)));
                }
                format!(
                    "{c}.{}  ({}){}{}\n",
                    i.name,
                    i.fields.join(", "),
                    if flags.is_empty() { "" } else { "  " },
                    flags.join(", ")
                )
            })
            .collect()
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// littlefs

/// The littlefs volume of an image, read-only and without a key.
pub fn lfs(path: &Path, c: &LfsCmd, out: &Out, opts: &ImageOpts) -> Res<()> {
    let (g, _) = image::existing_geometry(path, opts)?;
    let mut fs = image::mount(
        image::open_device(path, g, false, false)?,
        &opts.config,
        path,
    )?;
    let res = lfs_on(&mut fs, c, out);
    drop(fs.into_device());
    res
}

fn lfs_on(fs: &mut cairndb::lfs::Fs<image::Dev>, c: &LfsCmd, out: &Out) -> Res<()> {
    match c {
        LfsCmd::Ls { path } => {
            let mut entries = Vec::new();
            fs.list_dir(path, &mut |name, kind, size| {
                entries.push((name.to_string(), kind, size));
                Ok(())
            })
            .map_err(|e| match e {
                DbError::NotFound => CliError::not_found(format!("no directory {path}")),
                e => crate::error::db_err(e).context(path),
            })?;
            let j = json!(entries
                .iter()
                .map(|(n, k, size)| json!({"name": n, "type": match k {
                    EntryKind::File => "file", EntryKind::Dir => "dir" }, "size": size}))
                .collect::<Vec<_>>());
            out.emit(j, || {
                entries
                    .iter()
                    .map(|(n, k, size)| match k {
                        EntryKind::Dir => format!("{:>9}  {n}/\n", "-"),
                        EntryKind::File => format!("{size:>9}  {n}\n"),
                    })
                    .collect()
            });
            Ok(())
        }
        LfsCmd::Cat { path, output } => {
            let mut data = Vec::new();
            fs.read_file(path, &mut data, usize::MAX)
                .map_err(|e| match e {
                    DbError::NotFound => CliError::not_found(format!("no file {path}")),
                    e => crate::error::db_err(e).context(path),
                })?;
            match output {
                Some(p) => std::fs::write(p, &data).map_err(|e| io_err(p, e)),
                None => write_stdout(&data).map_err(|e| CliError::failed(format!("stdout: {e}"))),
            }
        }
    }
}
