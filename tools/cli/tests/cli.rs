//! Integration tests of the `cairn` binary: each spawns the built program on image files in a
//! temporary directory and checks its stdout, stderr and exit code. No Python or QEMU here
//! (those round trips are `cargo xtask test`'s step `cli`).

use serde_json::Value as Json;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const KEY: &str = "517e0299c4103d8a6f21b0475ce8137a00000000000000000000000000000000";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success; stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    fn fails(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}; stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line of error: {:?}", self.stderr);
        assert!(
            lines[0].starts_with("cairn: error: ") || lines[0].starts_with('{'),
            "{}",
            lines[0]
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }
    fn json(&self) -> Json {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
    fn lines(&self) -> Vec<Json> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
    /// Run `cairn` in this directory with `stdin`.
    fn run_in(&self, args: &[&str], stdin: &str) -> Out {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .current_dir(self.tmp.path())
            .env_remove("CAIRN_PASSPHRASE")
            .env_remove("CAIRN_BACKUP_PASSPHRASE")
            .env_remove("CAIRN_NEW_PASSPHRASE")
            .env("CAIRN_HISTORY", self.path("history"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    fn run(&self, args: &[&str]) -> Out {
        self.run_in(args, "")
    }
    /// `cairn IMAGE --key-hex KEY ARGS...`
    fn k(&self, image: &str, args: &[&str]) -> Out {
        let mut a = vec![image, "--key-hex", KEY];
        a.extend_from_slice(args);
        self.run(&a)
    }
    /// A new encrypted 64-block image.
    fn image(&self, name: &str) {
        self.run(&[name, "create", "--block-count", "64", "--key-hex", KEY])
            .ok();
    }
}

fn doc_field(d: &Json, f: &str) -> Json {
    d.get(f).cloned().unwrap_or(Json::Null)
}

#[test]
fn create_writes_raw_littlefs_of_the_geometry() {
    let d = Dir::new();
    let o = d
        .run(&["a.img", "create", "--block-count", "64", "--json"])
        .ok();
    let j = o.json();
    assert_eq!(j["block_size"], 4096);
    assert_eq!(j["block_count"], 64);
    assert_eq!(j["read_size"], 16);
    let img = d.read("a.img");
    assert_eq!(img.len(), 64 * 4096, "the file is the flash, nothing more");
    assert_eq!(
        &img[8..16],
        b"littlefs",
        "littlefs' superblock at the start"
    );
    // The block size is read back from the superblock, the count from the size.
    let info = d.run(&["a.img", "info", "--json"]).ok().json();
    assert_eq!(info["geometry"]["block_size"], 4096);
    assert_eq!(info["geometry"]["block_count"], 64);
    assert!(info["littlefs"]["version"]
        .as_str()
        .unwrap()
        .starts_with("2."));
    assert_eq!(info["encrypted"], false);
    // Another geometry, given as a size.
    d.run(&["b.img", "create", "--block-size", "512", "--size", "64K"])
        .ok();
    assert_eq!(d.read("b.img").len(), 65536);
    let info = d.run(&["b.img", "info", "--json"]).ok().json();
    assert_eq!(info["geometry"]["block_size"], 512);
    assert_eq!(info["geometry"]["block_count"], 128);
    // Refusals.
    d.run(&["a.img", "create", "--block-count", "64"]).fails(1);
    d.run(&["a.img", "create", "--block-count", "32", "--force"])
        .ok();
    assert_eq!(d.read("a.img").len(), 32 * 4096);
    d.run(&["c.img", "create"]).fails(2);
    d.run(&["c.img", "create", "--block-count", "1"]).fails(2);
    d.run(&["c.img", "create", "--size", "1000"]).fails(2);
    d.run(&["c.img", "create", "--size", "64K", "--block-count", "16"])
        .fails(2);
    d.run(&["c.img", "create", "--block-count", "8", "--prog-size", "3"])
        .fails(2);
    assert!(!d.path("c.img").exists(), "a refused create leaves no file");
}

#[test]
fn keys_and_passphrases() {
    let d = Dir::new();
    let mut raw = [0u8; 32];
    raw[..16].copy_from_slice(&[
        0x51, 0x7e, 0x02, 0x99, 0xc4, 0x10, 0x3d, 0x8a, 0x6f, 0x21, 0xb0, 0x47, 0x5c, 0xe8, 0x13,
        0x7a,
    ]);
    d.write("raw.key", raw);
    d.write("hex.key", format!("{KEY}\n"));
    d.write("pass.txt", "correct horse\n");
    d.run(&[
        "a.img",
        "create",
        "--block-count",
        "64",
        "--key-file",
        "raw.key",
    ])
    .ok();
    // The same key as a raw file, a hex file and hex on the command line.
    for k in [
        vec!["--key-file", "raw.key"],
        vec!["--key-file", "hex.key"],
        vec!["--key-hex", KEY],
    ] {
        let mut a = vec!["a.img", "info", "--json"];
        a.extend(k);
        let j = d.run(&a).ok().json();
        assert_eq!(j["encrypted"], true);
        assert_eq!(j["passphrase"], false);
    }
    let wrong = KEY.replace('5', "6");
    d.run(&["a.img", "info", "--key-hex", &wrong]).fails(3);
    d.run(&["a.img", "info"]).fails(3);
    d.run(&["a.img", "info", "--passphrase", "x"]).fails(3);
    d.run(&["a.img", "info", "--key-hex", "abcd"]).fails(3);
    d.run(&["a.img", "info", "--key-file", "missing.key"])
        .fails(5);
    d.run(&["a.img", "info", "--key-file", "pass.txt"]).fails(3);
    d.run(&["a.img", "info", "--key-hex", KEY, "--passphrase", "x"])
        .fails(2);
    // Passphrases: from a file, the option and the environment.
    d.run(&[
        "p.img",
        "create",
        "--block-count",
        "64",
        "--passphrase-file",
        "pass.txt",
        "--kdf-iterations",
        "2000",
    ])
    .ok();
    let j = d
        .run(&["p.img", "info", "--json", "--passphrase", "correct horse"])
        .ok()
        .json();
    assert_eq!(j["passphrase"], true);
    assert_eq!(j["kdf_iterations"], 2000);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    let o = cmd
        .args(["p.img", "info"])
        .current_dir(d.tmp.path())
        .env("CAIRN_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    assert!(o.status.success());
    d.run(&["p.img", "info", "--passphrase", "wrong horse"])
        .fails(3);
    d.run(&["p.img", "info", "--key-hex", KEY]).fails(3);
    // A plain image refuses a key.
    d.run(&["n.img", "create", "--block-count", "64"]).ok();
    d.run(&["n.img", "info", "--key-hex", KEY]).fails(3);
}

#[test]
fn document_commands() {
    let d = Dir::new();
    d.image("a.img");
    let id = d
        .k(
            "a.img",
            &["insert", "readings", r#"{"room":"R101","temp":21.5}"#],
        )
        .ok();
    assert_eq!(id.stdout.trim(), "1");
    // --sync: every commit is fsynced, with the same result.
    d.k("a.img", &["insert", "synced", "{}", "--sync"]).ok();
    d.k("a.img", &["get", "synced", "1"]).ok();
    let o = d.run_in(
        &["a.img", "--key-hex", KEY, "insert", "readings", "--json"],
        r#"{"room":"R102","temp":19}"#,
    );
    assert_eq!(o.ok().json()["_id"], 2);
    let doc = d
        .k("a.img", &["get", "readings", "1", "--json"])
        .ok()
        .json();
    assert_eq!(doc["room"], "R101");
    assert_eq!(doc["_ver"], 1);
    // Field order is the document's.
    let text = d.k("a.img", &["get", "readings", "1"]).ok().stdout;
    assert!(text.starts_with(r#"{"_id":1,"_ver":1,"#), "{text}");
    d.k(
        "a.img",
        &["patch", "readings", "1", r#"{"$inc":{"temp":1}}"#],
    )
    .ok();
    let doc = d
        .k("a.img", &["get", "readings", "1", "--json"])
        .ok()
        .json();
    assert_eq!(doc["temp"], 22.5);
    assert_eq!(doc["_ver"], 2);
    d.k("a.img", &["replace", "readings", "2", r#"{"room":"R9"}"#])
        .ok();
    let doc = d
        .k("a.img", &["get", "readings", "2", "--json"])
        .ok()
        .json();
    assert_eq!(doc["room"], "R9");
    assert_eq!(doc_field(&doc, "temp"), Json::Null);
    // Tags and time to live.
    d.k(
        "a.img",
        &[
            "insert",
            "readings",
            r#"{"room":"R3","temp":30}"#,
            "--tags",
            "hot,alarm",
            "--ttl",
            "3600000",
        ],
    )
    .ok();
    let doc = d
        .k("a.img", &["get", "readings", "3", "--json"])
        .ok()
        .json();
    assert_eq!(doc["_tags"], serde_json::json!(["hot", "alarm"]));
    assert!(doc["_exp"].as_u64().is_some());
    // Bad input and missing documents.
    d.k("a.img", &["get", "readings", "99"]).fails(5);
    d.k("a.img", &["get", "nothing", "1"]).fails(5);
    d.k("a.img", &["insert", "readings", "{\"room\":"]).fails(2);
    d.k("a.img", &["insert", "readings", "[1,2]"]).fails(2);
    d.k("a.img", &["insert", "bad name", "{}"]).fails(2);
    d.k("a.img", &["insert", "_events", "{}"]).fails(2);
    d.k(
        "a.img",
        &["patch", "readings", "1", r#"{"$bogus":{"a":1}}"#],
    )
    .fails(2);
    d.k("a.img", &["patch", "readings", "77", r#"{"$set":{"a":1}}"#])
        .fails(5);
    d.k("a.img", &["replace", "readings", "77", "{}"]).fails(5);
    d.k("a.img", &["get", "readings", "x"]).fails(2);
    // Delete by id (one missing: the others go, exit 5), by filter, drop.
    let o = d.k("a.img", &["delete", "readings", "2", "42"]).fails(5);
    assert!(o.stdout.contains("1 deleted"));
    d.k("a.img", &["get", "readings", "2"]).fails(5);
    let o = d
        .k(
            "a.img",
            &[
                "delete",
                "readings",
                "--filter",
                r#"{"temp":{"$gt":25}}"#,
                "--json",
            ],
        )
        .ok();
    assert_eq!(o.json()["deleted"], 1);
    d.k("a.img", &["delete", "readings"]).fails(2);
    d.k("a.img", &["drop", "readings"]).ok();
    d.k("a.img", &["drop", "readings"]).fails(5);
    let ls = d.k("a.img", &["ls", "collections", "--json"]).ok().json();
    assert!(ls["collections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] != "readings"));
}

fn readings(d: &Dir, image: &str, n: usize) {
    let mut lines = String::new();
    for i in 0..n {
        lines.push_str(&format!(
            "{{\"sensor\":\"s{}\",\"seq\":{i},\"temp\":{}.5}}\n",
            i % 3,
            15 + i % 10
        ));
    }
    d.write("readings.jsonl", &lines);
    d.k(
        image,
        &["import", "readings.jsonl", "--collection", "readings"],
    )
    .ok();
}

#[test]
fn find_filters_sorts_projects_and_formats() {
    let d = Dir::new();
    d.image("a.img");
    readings(&d, "a.img", 30);
    let all = d.k("a.img", &["find", "readings"]).ok().lines();
    assert_eq!(all.len(), 30, "JSON lines when stdout is not a terminal");
    let hot = d
        .k("a.img", &["find", "readings", r#"{"temp":{"$gte":23}}"#])
        .ok()
        .lines();
    assert_eq!(hot.len(), 6);
    assert!(hot.iter().all(|x| x["temp"].as_f64().unwrap() >= 23.0));
    let top = d
        .k(
            "a.img",
            &[
                "find", "readings", "--sort", "-temp", "--sort", "seq", "--limit", "3", "--fields",
                "temp,seq",
            ],
        )
        .ok()
        .lines();
    assert_eq!(top.len(), 3);
    assert_eq!(top[0]["temp"], 24.5);
    assert_eq!(top[0]["seq"], 9);
    assert_eq!(top[1]["seq"], 19);
    assert!(top[0].get("sensor").is_none(), "projection");
    assert!(top[0].get("_id").is_some(), "_id kept");
    let skipped = d
        .k(
            "a.img",
            &["find", "readings", "--sort", "seq:desc", "--skip", "28"],
        )
        .ok()
        .lines();
    assert_eq!(
        skipped.iter().map(|x| x["seq"].clone()).collect::<Vec<_>>(),
        vec![1, 0]
    );
    let ex = d
        .k(
            "a.img",
            &[
                "find",
                "readings",
                "{}",
                "--exclude",
                "sensor,seq",
                "-n",
                "1",
            ],
        )
        .ok()
        .lines();
    assert!(ex[0].get("sensor").is_none() && ex[0].get("temp").is_some());
    let arr = d
        .k(
            "a.img",
            &["find", "readings", "--format", "json", "-n", "2"],
        )
        .ok()
        .json();
    assert_eq!(arr.as_array().unwrap().len(), 2);
    let arr = d
        .k("a.img", &["find", "readings", "--json", "-n", "4"])
        .ok()
        .json();
    assert_eq!(arr.as_array().unwrap().len(), 4);
    let t = d
        .k(
            "a.img",
            &["find", "readings", "--format", "table", "-n", "2"],
        )
        .ok()
        .stdout;
    let rows: Vec<&str> = t.lines().collect();
    assert!(rows[0].starts_with("_id") && rows[0].contains("sensor"));
    assert!(rows[1].starts_with("---"));
    assert_eq!(rows.last().copied(), Some("(2 documents)"));
    let n = d
        .k(
            "a.img",
            &["find", "readings", r#"{"sensor":"s1"}"#, "--count"],
        )
        .ok();
    assert_eq!(n.stdout.trim(), "10");
    // The plan changes once an index exists.
    let plan = d
        .k("a.img", &["find", "readings", r#"{"seq":5}"#, "--explain"])
        .ok()
        .json();
    assert_eq!(plan["access"], "scan");
    d.k("a.img", &["index", "create", "readings", "by_seq", "seq"])
        .ok();
    let plan = d
        .k("a.img", &["find", "readings", r#"{"seq":5}"#, "--explain"])
        .ok()
        .json();
    assert_eq!(plan["access"], "index");
    assert_eq!(plan["index"], "by_seq");
    // Bad filters and options.
    d.k("a.img", &["find", "readings", r#"{"temp":{"$bogus":1}}"#])
        .fails(2);
    d.k("a.img", &["find", "readings", r#"{"temp":"#]).fails(2);
    d.k("a.img", &["find", "readings", "[1]"]).fails(2);
    d.k("a.img", &["find", "readings", "--format", "xml"])
        .fails(2);
    d.k("a.img", &["find", "readings", "--fields", "a..b"])
        .fails(2);
    // A missing collection has no documents.
    assert_eq!(d.k("a.img", &["find", "nothing"]).ok().stdout, "");
}

#[test]
fn key_value_commands() {
    let d = Dir::new();
    d.image("a.img");
    d.k("a.img", &["kv", "put", "config", "wifi/ssid", "lab-net"])
        .ok();
    d.k(
        "a.img",
        &["kv", "put", "config", "blob", "--value-hex", "00ff10"],
    )
    .ok();
    d.k("a.img", &["kv", "put", "config", "0102", "aabb", "--hex"])
        .ok();
    d.write("v.bin", [9u8, 8, 7]);
    d.k(
        "a.img",
        &["kv", "put", "files", "v", "--value-file", "v.bin"],
    )
    .ok();
    assert_eq!(
        d.k("a.img", &["kv", "get", "config", "wifi/ssid"])
            .ok()
            .stdout,
        "lab-net\n"
    );
    assert_eq!(
        d.k("a.img", &["kv", "get", "config", "blob"]).ok().stdout,
        "00ff10\n",
        "bytes that are not text print as hex"
    );
    assert_eq!(
        d.k("a.img", &["kv", "get", "config", "0102", "--hex"])
            .ok()
            .stdout,
        "aabb\n"
    );
    let raw = d.k("a.img", &["kv", "get", "files", "v", "--raw"]).ok();
    assert_eq!(raw.stdout.as_bytes(), &[9, 8, 7]);
    let j = d
        .k("a.img", &["kv", "get", "config", "blob", "--json"])
        .ok()
        .json();
    assert_eq!(j["value"]["$binary"], "AP8Q");
    let keys = d.k("a.img", &["kv", "ls", "config", "--json"]).ok().json();
    assert_eq!(keys.as_array().unwrap().len(), 3);
    let wifi = d.k("a.img", &["kv", "ls", "config", "--prefix", "wi"]).ok();
    assert_eq!(wifi.stdout, "wifi/ssid\n");
    d.k(
        "a.img",
        &[
            "kv", "put", "config", "temp", "1", "--ttl", "10000000", "--tags", "a,b",
        ],
    )
    .ok();
    let j = d
        .k("a.img", &["kv", "get", "config", "temp", "--json"])
        .ok()
        .json();
    assert!(j["expires"].as_u64().is_some());
    assert_eq!(j["tags"], serde_json::json!(["a", "b"]));
    d.k("a.img", &["kv", "delete", "config", "wifi/ssid"]).ok();
    d.k("a.img", &["kv", "get", "config", "wifi/ssid"]).fails(5);
    d.k("a.img", &["kv", "delete", "config", "wifi/ssid"])
        .fails(5);
    d.k("a.img", &["kv", "get", "config", "zz", "--hex"])
        .fails(2);
    d.k("a.img", &["kv", "put", "_sys", "k", "v"]).fails(2);
    d.k("a.img", &["kv", "put", "config", "k"]).fails(2);
    let long = "x".repeat(2000);
    d.k("a.img", &["kv", "put", "config", "k", &long]).fails(1);
    d.k(
        "a.img",
        &["kv", "put", "config", "v", "--value-file", "none.bin"],
    )
    .fails(5);
}

#[test]
fn schemas_validate_later_writes_and_travel_in_exports() {
    let d = Dir::new();
    d.image("a.img");
    d.k("a.img", &["insert", "devices", r#"{"serial":7}"#]).ok();
    d.k("a.img", &["schema", "devices"]).fails(5);
    let schema =
        r#"{"type":"object","required":["serial"],"properties":{"serial":{"type":"string"}}}"#;
    d.k("a.img", &["schema", "devices", "--set", schema]).ok();
    let shown = d.k("a.img", &["schema", "devices", "--json"]).ok().json();
    assert_eq!(shown["required"], serde_json::json!(["serial"]));
    let o = d
        .k("a.img", &["insert", "devices", r#"{"serial":8}"#])
        .fails(1);
    assert!(o.stderr.contains("schema"), "{}", o.stderr);
    d.k("a.img", &["insert", "devices", r#"{"serial":"SN-1"}"#])
        .ok();
    d.k(
        "a.img",
        &["schema", "devices", "--set", r#"{"type":"nonsense"}"#],
    )
    .fails(2);
    // Exported with the data, applied after it on import (the old document stays).
    d.k("a.img", &["export", "e.jsonl"]).ok();
    d.run(&["b.img", "create", "--block-count", "64"]).ok();
    d.run(&["b.img", "import", "e.jsonl"]).ok();
    assert_eq!(
        d.run(&["b.img", "find", "devices", "--count"]).ok().stdout,
        "2\n"
    );
    d.run(&["b.img", "insert", "devices", r#"{"serial":9}"#])
        .fails(1);
    d.k("a.img", &["schema", "devices", "--clear"]).ok();
    d.k("a.img", &["insert", "devices", r#"{"serial":10}"#])
        .ok();
}

#[test]
fn ls_lists_everything() {
    let d = Dir::new();
    d.image("a.img");
    d.k(
        "a.img",
        &["insert", "readings", r#"{"t":1,"_tags":["hot","x"]}"#],
    )
    .ok();
    d.k(
        "a.img",
        &["insert", "readings", r#"{"t":2,"_tags":["hot"]}"#],
    )
    .ok();
    d.k("a.img", &["kv", "put", "config", "a", "1"]).ok();
    d.k("a.img", &["index", "create", "readings", "by_t", "t"])
        .ok();
    d.k("a.img", &["backup", "b.bak"]).ok();
    let all = d.k("a.img", &["ls", "--json"]).ok().json();
    let colls = all["collections"].as_array().unwrap();
    assert!(colls
        .iter()
        .any(|c| c["name"] == "readings" && c["documents"] == 2));
    assert_eq!(all["namespaces"][0]["name"], "config");
    assert_eq!(all["namespaces"][0]["keys"], 1);
    let text = d.k("a.img", &["ls"]).ok().stdout;
    assert!(
        text.contains("collection  readings  (2 documents)"),
        "{text}"
    );
    let tags = d
        .k("a.img", &["ls", "tags", "readings", "--json"])
        .ok()
        .json();
    assert!(tags
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["tag"] == "hot" && t["documents"] == 2));
    let idx = d
        .k("a.img", &["ls", "indexes", "readings", "--json"])
        .ok()
        .json();
    assert_eq!(idx[0]["name"], "by_t");
    let keys = d.k("a.img", &["ls", "keys", "config"]).ok().stdout;
    assert_eq!(keys, "a\n");
    let ev = d.k("a.img", &["ls", "events", "--json"]).ok().json();
    assert!(ev
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["msg"].as_str().unwrap().contains("full backup")));
    let files = d.k("a.img", &["ls", "files", "--json"]).ok().json();
    let names: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"cairn") && names.contains(&"wal"),
        "{names:?}"
    );
    d.k("a.img", &["ls", "tags"]).fails(2);
    d.k("a.img", &["ls", "nonsense"]).fails(2);
    let st = d.k("a.img", &["stats", "--json"]).ok().json();
    assert_eq!(st["collections"].as_array().unwrap().len(), 2);
    assert_eq!(st["space"]["block_count"], 64);
    assert!(d
        .k("a.img", &["stats"])
        .ok()
        .stdout
        .contains("namespace    config"));
}

#[test]
fn littlefs_files_without_a_key() {
    let d = Dir::new();
    d.image("a.img");
    readings(&d, "a.img", 40);
    let files = d.run(&["a.img", "lfs", "ls", "--json"]).ok().json();
    let files = files.as_array().unwrap();
    assert!(files.iter().any(|f| f["name"] == "cairn"));
    assert!(files
        .iter()
        .any(|f| f["name"].as_str().unwrap().starts_with('s')));
    let root = d.run(&["a.img", "lfs", "cat", "cairn"]).ok();
    assert!(root.stdout.starts_with("CAIRNDB\u{1}"), "the root record");
    d.run(&["a.img", "lfs", "cat", "/cairn", "-o", "root.bin"])
        .ok();
    let size = files.iter().find(|f| f["name"] == "cairn").unwrap()["size"]
        .as_u64()
        .unwrap();
    assert_eq!(d.read("root.bin").len() as u64, size);
    d.run(&["a.img", "lfs", "cat", "nothing"]).fails(5);
    d.run(&["a.img", "lfs", "ls", "/nodir"]).fails(5);
}

#[test]
fn import_and_export_round_trip() {
    let d = Dir::new();
    d.image("a.img");
    readings(&d, "a.img", 50);
    d.write(
        "arr.json",
        r#"[{"name":"valve","qty":3,"blob":{"$binary":"AAE="}},{"name":"pump","qty":1,"dims":{"w":2}}]"#,
    );
    let o = d
        .k("a.img", &["import", "arr.json", "-c", "things", "--json"])
        .ok()
        .json();
    assert_eq!(o["imported"], 2);
    d.k("a.img", &["kv", "put", "config", "ssid", "lab"]).ok();
    d.k(
        "a.img",
        &[
            "kv",
            "put",
            "config",
            "bin",
            "--value-hex",
            "00ff",
            "--tags",
            "t1",
        ],
    )
    .ok();
    d.k(
        "a.img",
        &[
            "index",
            "create",
            "readings",
            "by_sensor",
            "sensor",
            "seq",
            "--unique",
        ],
    )
    .ok();
    d.k("a.img", &["backup", "x.bak"]).ok(); // an event in the system collection
                                             // JSON lines, re-imported into a plain image of another geometry.
    let e = d
        .k("a.img", &["export", "dump.jsonl", "--json"])
        .ok()
        .json();
    assert_eq!(e["documents"].as_u64().unwrap(), 53, "50 + 2 + 1 event");
    assert_eq!(e["keys"], 2);
    let text = String::from_utf8(d.read("dump.jsonl")).unwrap();
    assert!(text.contains(r#""index":"by_sensor""#));
    d.run(&[
        "b.img",
        "create",
        "--block-size",
        "2048",
        "--block-count",
        "128",
    ])
    .ok();
    let o = d
        .run(&["b.img", "import", "dump.jsonl", "--json"])
        .ok()
        .json();
    assert_eq!(o["skipped_system"], 1);
    assert_eq!(o["imported"], 50 + 2 + 2 + 1, "docs, keys, the index");
    let a = d.k("a.img", &["find", "readings", "--exclude", "_ts"]).ok();
    let b = d
        .run(&["b.img", "find", "readings", "--exclude", "_ts"])
        .ok();
    assert_eq!(a.stdout, b.stdout);
    let a = d.k("a.img", &["find", "things"]).ok().lines();
    let b = d.run(&["b.img", "find", "things"]).ok().lines();
    assert_eq!(a[0]["blob"], b[0]["blob"]);
    assert_eq!(b[1]["dims"]["w"], 2);
    assert_eq!(
        d.run(&["b.img", "kv", "get", "config", "bin", "--json"])
            .ok()
            .json()["tags"],
        serde_json::json!(["t1"])
    );
    let idx = d.run(&["b.img", "index", "list", "--json"]).ok().json();
    assert_eq!(idx[0]["name"], "by_sensor");
    assert_eq!(idx[0]["unique"], true);
    // Importing again keeps the index, and the unique index refuses the duplicates.
    let o = d.run(&["b.img", "import", "dump.jsonl"]).fails(1);
    assert!(
        o.stderr.contains("line") && o.stderr.contains("unique"),
        "{}",
        o.stderr
    );
    // Export to stdout, and only some collections.
    let s = d.k("a.img", &["export", "-", "-c", "things"]).ok();
    assert_eq!(s.stdout.lines().count(), 2);
    d.k("a.img", &["export", "dump.jsonl"]).fails(1);
    d.k("a.img", &["export", "dump.jsonl", "--force"]).ok();
    d.k("a.img", &["export", "x.jsonl", "-c", "nothing"])
        .fails(5);
    d.k("a.img", &["export", "-", "--format", "sqlite"])
        .fails(2);
}

#[test]
fn import_reports_bad_input_by_line() {
    let d = Dir::new();
    d.image("a.img");
    d.write("bad.jsonl", "{\"a\":1}\n{\"a\":2}\n\n{\"a\":\n{\"a\":4}\n");
    let o = d.k("a.img", &["import", "bad.jsonl", "-c", "t"]).fails(2);
    assert!(o.stderr.contains("line 4"), "{}", o.stderr);
    assert!(o.stderr.contains("2 item(s) before it"), "{}", o.stderr);
    assert_eq!(d.k("a.img", &["find", "t", "--count"]).ok().stdout, "2\n");
    let o = d.k("a.img", &["import", "bad.jsonl", "-c", "u", "--keep-going"]);
    assert_eq!(o.code, 2);
    let errs: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(errs.len(), 2, "a warning per bad item, then the error");
    assert!(errs[0].starts_with("cairn: warning: skipped") && errs[0].contains("line 4"));
    assert!(errs[1].starts_with("cairn: error: 1 item(s) failed"));
    assert_eq!(d.k("a.img", &["find", "u", "--count"]).ok().stdout, "3\n");
    d.write("not-records.jsonl", "{\"a\":1}\n");
    d.k("a.img", &["import", "not-records.jsonl"]).fails(2);
    d.write("scalars.json", "[1,2]");
    d.k("a.img", &["import", "scalars.json", "-c", "t"])
        .fails(2);
    d.write("broken.json", "[{\"a\":1},");
    d.k("a.img", &["import", "broken.json", "-c", "t"]).fails(2);
    d.k("a.img", &["import", "missing.jsonl", "-c", "t"])
        .fails(5);
    let o = d.run_in(
        &["a.img", "--key-hex", KEY, "import", "-", "-c", "piped"],
        "{\"p\":1}\n{\"p\":2}\n",
    );
    o.ok();
    assert_eq!(
        d.k("a.img", &["find", "piped", "--count"]).ok().stdout,
        "2\n"
    );
}

#[test]
fn sqlite_export_has_a_table_per_collection() {
    let d = Dir::new();
    d.image("a.img");
    readings(&d, "a.img", 25);
    d.k(
        "a.img",
        &[
            "insert",
            "things",
            r#"{"name":"valve","Name":"dup","dims":{"w":2},"ok":true}"#,
        ],
    )
    .ok();
    d.k("a.img", &["kv", "put", "config", "ssid", "lab"]).ok();
    d.k("a.img", &["index", "create", "readings", "by_seq", "seq"])
        .ok();
    let o = d
        .k("a.img", &["export", "out.sqlite", "--json"])
        .ok()
        .json();
    assert_eq!(o["format"], "sqlite");
    let c = rusqlite::Connection::open(d.path("out.sqlite")).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM readings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 25);
    let hot: i64 = c
        .query_row(
            "SELECT count(*) FROM readings WHERE temp >= 23 AND sensor = 's0'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(hot > 0);
    let (name, dims, ok, doc): (String, String, i64, String) = c
        .query_row("SELECT name, dims, ok, _doc FROM things", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!(
        (name.as_str(), dims.as_str(), ok),
        ("valve", r#"{"w":2}"#, 1)
    );
    assert!(
        doc.contains(r#""Name":"dup""#),
        "a clashing name stays in _doc"
    );
    let v: String = c
        .query_row(
            "SELECT value_text FROM _kv WHERE namespace='config' AND key_text='ssid'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, "lab");
    let idx: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='index' AND tbl_name='readings'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(idx >= 1, "the cairndb index is mirrored");
    drop(c);
    d.k("a.img", &["export", "out.sqlite"]).fails(1);
}

#[test]
fn backup_restore_and_verify() {
    let d = Dir::new();
    d.image("a.img");
    readings(&d, "a.img", 10);
    d.k("a.img", &["backup", "full.bak"]).ok();
    d.k("a.img", &["delete", "readings", "1"]).ok();
    d.k("a.img", &["kv", "put", "config", "k", "v"]).ok();
    let inc = d
        .k("a.img", &["backup", "inc.bak", "--incremental", "--json"])
        .ok()
        .json();
    assert_eq!(inc["kind"], "incremental");
    d.k("a.img", &["backup", "full.bak"]).fails(1);
    let v = d
        .k("a.img", &["verify-backup", "full.bak", "inc.bak", "--json"])
        .ok()
        .json();
    assert_eq!(v["chain"], true);
    d.k("a.img", &["verify-backup", "inc.bak", "full.bak"])
        .fails(4);
    // Restore the chain into a new image: the same documents and key.
    d.image("b.img");
    d.k("b.img", &["insert", "other", "{}"]).ok();
    let r = d
        .k("b.img", &["restore", "full.bak", "inc.bak", "--json"])
        .ok()
        .json();
    assert_eq!(r["streams"], 2);
    let a = d.k("a.img", &["find", "readings"]).ok().stdout;
    let b = d.k("b.img", &["find", "readings"]).ok().stdout;
    assert_eq!(a, b);
    assert_eq!(d.k("b.img", &["find", "other"]).ok().stdout, "", "replaced");
    assert_eq!(
        d.k("b.img", &["kv", "get", "config", "k"]).ok().stdout,
        "v\n"
    );
    // Damaged, truncated, foreign-key and missing streams.
    let mut bytes = d.read("full.bak");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    d.write("flip.bak", &bytes);
    d.k("b.img", &["verify-backup", "flip.bak"]).fails(4);
    d.k("b.img", &["restore", "flip.bak"]).fails(4);
    d.write("short.bak", &d.read("full.bak")[..100]);
    d.k("b.img", &["verify-backup", "short.bak"]).fails(4);
    d.k("b.img", &["restore", "nope.bak"]).fails(5);
    d.run(&["plain.img", "create", "--block-count", "64"]).ok();
    d.run(&["plain.img", "verify-backup", "full.bak"]).fails(3);
    // A passphrase backup is readable with the passphrase alone.
    d.k(
        "a.img",
        &[
            "backup",
            "pw.bak",
            "--backup-passphrase",
            "s3cret",
            "--kdf-iterations",
            "1000",
        ],
    )
    .ok();
    d.run(&[
        "plain.img",
        "verify-backup",
        "pw.bak",
        "--backup-passphrase",
        "s3cret",
    ])
    .ok();
    d.run(&[
        "plain.img",
        "verify-backup",
        "pw.bak",
        "--backup-passphrase",
        "wrong",
    ])
    .fails(3);
    d.run(&[
        "plain.img",
        "restore",
        "pw.bak",
        "--backup-passphrase",
        "s3cret",
    ])
    .ok();
    assert_eq!(
        d.run(&["plain.img", "find", "readings", "--count"])
            .ok()
            .stdout,
        "9\n"
    );
    d.k(
        "a.img",
        &[
            "backup",
            "x.bak",
            "--backup-key-hex",
            KEY,
            "--backup-passphrase",
            "p",
        ],
    )
    .fails(2);
    // An incremental needs an earlier backup of this database.
    d.image("c.img");
    d.k("c.img", &["backup", "c.bak", "--incremental"]).fails(1);
    assert!(!d.path("c.bak").exists(), "a failed backup leaves no file");
}

/// Flip bytes in every block that holds data past littlefs' superblock pair.
fn damage(img: &mut [u8], block_size: usize) -> usize {
    let mut n = 0;
    for b in 2..img.len() / block_size {
        let blk = &mut img[b * block_size..(b + 1) * block_size];
        if blk.iter().any(|x| *x != 0xff) {
            blk[64] ^= 0x5a;
            n += 1;
        }
    }
    n
}

#[test]
fn check_and_repair() {
    let d = Dir::new();
    d.image("a.img");
    readings(&d, "a.img", 200);
    let c = d.k("a.img", &["check", "--json"]).ok().json();
    assert_eq!(c["clean"], true);
    assert_eq!(c["documents"], 200);
    let mut img = d.read("a.img");
    assert!(damage(&mut img, 4096) > 0);
    d.write("bad.img", &img);
    let o = d.k("bad.img", &["check"]);
    assert_eq!(o.code, 4, "{}{}", o.stdout, o.stderr);
    let r = d.k("bad.img", &["repair", "--json"]);
    if r.code == 0 {
        assert_eq!(r.json()["after"]["clean"], true);
        d.k("bad.img", &["check"]).ok();
    } else {
        // Too damaged to open at all (the root record was hit): a one-line corrupt error.
        r.fails(4);
    }
    // Garbage, blank, truncated and padded images.
    let noise: Vec<u8> = (0..64 * 4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    d.write("noise.img", &noise);
    d.run(&["noise.img", "info"]).fails(4);
    d.run(&["noise.img", "info", "--block-size", "4096"])
        .fails(4);
    d.write("blank.img", vec![0xffu8; 64 * 4096]);
    d.run(&["blank.img", "info"]).fails(4);
    d.write("empty.img", b"");
    d.run(&["empty.img", "info"]).fails(4);
    d.write("short.img", &d.read("a.img")[..100_000]);
    d.k("short.img", &["info"]).fails(4);
    let mut padded = d.read("a.img");
    padded.extend_from_slice(&[0xff; 4096]);
    d.write("padded.img", &padded);
    d.k("padded.img", &["info"]).fails(4);
    d.k("a.img", &["info", "--block-count", "32"]).fails(4);
    d.k("a.img", &["info", "--block-size", "2048"]).fails(4);
    d.run(&["missing.img", "info"]).fails(5);
    std::fs::create_dir(d.path("dir.img")).unwrap();
    d.run(&["dir.img", "info"]).fails(2);
    // A littlefs volume without a database.
    let o = d.run(&["a.img", "lfs", "ls"]).ok();
    assert!(o.stdout.contains("cairn"));
}

#[test]
fn rekey_index_and_compact() {
    let d = Dir::new();
    d.image("a.img");
    readings(&d, "a.img", 60);
    d.k(
        "a.img",
        &[
            "rekey",
            "--new-passphrase",
            "pw",
            "--kdf-iterations",
            "1000",
        ],
    )
    .ok();
    d.k("a.img", &["info"]).fails(3);
    let j = d
        .run(&["a.img", "info", "--json", "--passphrase", "pw"])
        .ok()
        .json();
    assert_eq!(j["passphrase"], true);
    assert_eq!(j["documents"], 60);
    d.run(&["a.img", "rekey", "--passphrase", "pw", "--plain"])
        .ok();
    d.run(&["a.img", "info"]).ok();
    d.run(&["a.img", "rekey", "--new-key-hex", KEY]).ok();
    d.k("a.img", &["info"]).ok();
    d.k("a.img", &["rekey"]).fails(2);
    d.k("a.img", &["rekey", "--plain", "--new-key-hex", KEY])
        .fails(2);
    // Indexes.
    d.k(
        "a.img",
        &["index", "create", "readings", "by_sensor", "sensor"],
    )
    .ok();
    d.k(
        "a.img",
        &["index", "create", "readings", "by_sensor", "sensor"],
    )
    .fails(1);
    d.k(
        "a.img",
        &["index", "create", "readings", "u", "sensor", "--unique"],
    )
    .fails(1);
    d.k(
        "a.img",
        &[
            "index",
            "create",
            "readings",
            "hot",
            "seq",
            "--partial",
            r#"{"temp":{"$gt":20}}"#,
        ],
    )
    .ok();
    d.k(
        "a.img",
        &[
            "index",
            "create",
            "readings",
            "p",
            "seq",
            "--partial",
            "{bad",
        ],
    )
    .fails(2);
    let l = d
        .k("a.img", &["index", "list", "readings", "--json"])
        .ok()
        .json();
    assert_eq!(l.as_array().unwrap().len(), 2);
    assert!(l[1]["partial"].is_object());
    d.k("a.img", &["index", "drop", "readings", "hot"]).ok();
    d.k("a.img", &["index", "drop", "readings", "hot"]).fails(5);
    // Compaction after deleting most documents reclaims space.
    d.k(
        "a.img",
        &["delete", "readings", "--filter", r#"{"seq":{"$gte":5}}"#],
    )
    .fails(1);
    let n = d
        .k(
            "a.img",
            &[
                "delete",
                "readings",
                "--filter",
                r#"{"seq":{"$gte":5}}"#,
                "--batched",
            ],
        )
        .ok();
    assert_eq!(n.stdout, "55 deleted\n");
    let c = d.k("a.img", &["compact", "--json"]).ok().json();
    assert!(c["used_blocks_after"].as_u64() <= c["used_blocks_before"].as_u64());
    assert_eq!(
        d.k("a.img", &["find", "readings", "--count"]).ok().stdout,
        "5\n"
    );
    d.k("a.img", &["check"]).ok();
}

#[test]
fn read_only_commands_leave_the_file_unchanged() {
    let d = Dir::new();
    d.image("a.img");
    readings(&d, "a.img", 20);
    d.k(
        "a.img",
        &["insert", "ttl", r#"{"a":1}"#, "--ttl", "100000000"],
    )
    .ok();
    d.k("a.img", &["backup", "f.bak"]).ok();
    let before = d.read("a.img");
    for args in [
        vec!["info"],
        vec!["stats"],
        vec!["ls"],
        vec!["ls", "events"],
        vec!["find", "readings"],
        vec!["find", "ttl"],
        vec!["get", "ttl", "1"],
        vec!["kv", "ls", "none"],
        vec!["check"],
        vec!["export", "e.jsonl"],
        vec!["verify-backup", "f.bak"],
        vec!["index", "list"],
        vec!["lfs", "ls"],
    ] {
        d.k("a.img", &args).ok();
        assert!(d.read("a.img") == before, "{args:?} changed the image");
    }
    // The read-only shell keeps its writes in memory only.
    let o = d.run_in(
        &["a.img", "--key-hex", KEY, "shell", "--read-only"],
        "insert scratch '{\"x\":1}'\nfind scratch --count\n",
    );
    assert_eq!(o.ok().stdout, "1\n1\n");
    assert!(d.read("a.img") == before, "the read-only shell wrote");
}

#[test]
fn the_shell_runs_commands_from_a_pipe() {
    let d = Dir::new();
    d.image("a.img");
    let script = "\
# a comment
insert readings '{\"room\":\"R1\",\"temp\":20}'
insert readings '{\"room\":\"R2\",\"temp\":25}'
find readings '{\"temp\":{\"$gt\":21}}' --fields room
kv put config ssid lab
get readings 9
.mode json
kv get config ssid
.mode text
bogus
help find
find readings --count
quit
find readings
";
    let o = d.run_in(&["a.img", "--key-hex", KEY], script);
    assert_eq!(o.code, 5, "the first failure's code: {}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "1");
    assert_eq!(lines[1], "2");
    assert_eq!(lines[2], r#"{"_id":2,"room":"R2"}"#);
    assert!(lines[3].starts_with(r#"{"namespace":"config""#));
    assert!(o.stdout.contains("Usage: find"), "help find");
    assert_eq!(lines.last().copied(), Some("2"), "quit stops the script");
    let errors: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{}", o.stderr);
    assert!(errors[0].contains("no document 9"));
    assert!(errors[1].contains("bogus"));
    // The commands' writes are in the image.
    assert_eq!(
        d.k("a.img", &["find", "readings", "--count"]).ok().stdout,
        "2\n"
    );
    // A clean script exits 0; create is refused inside.
    let o = d.run_in(&["a.img", "--key-hex", KEY, "shell"], "ls\n");
    o.ok();
    let o = d.run_in(&["a.img", "--key-hex", KEY], "create --block-count 4\n");
    assert_eq!(o.code, 2);
    let o = d.run_in(&["a.img", "--key-hex", KEY], "find 'unbalanced\n");
    assert_eq!(o.code, 2);
}

#[test]
fn help_json_errors_and_usage() {
    let d = Dir::new();
    let o = d.run(&["--help"]).ok();
    assert!(o.stdout.contains("Exit codes:"));
    assert!(o.stdout.contains("cache and lookahead") || o.stdout.contains("Flash geometry"));
    for cmd in [
        "create",
        "info",
        "stats",
        "ls",
        "find",
        "get",
        "insert",
        "patch",
        "replace",
        "delete",
        "drop",
        "kv",
        "import",
        "export",
        "backup",
        "restore",
        "verify-backup",
        "check",
        "repair",
        "rekey",
        "index",
        "compact",
        "lfs",
        "shell",
    ] {
        let o = d.run(&["x.img", cmd, "--help"]).ok();
        assert!(o.stdout.contains("Usage:"), "{cmd}");
    }
    d.run(&["--version"]).ok();
    d.run(&[]).fails(2);
    d.run(&["x.img", "nonsense"]).fails(2);
    let o = d.run(&["missing.img", "info", "--json"]).fails(5);
    let j: Json = serde_json::from_str(o.stderr.trim()).unwrap();
    assert_eq!(j["exit"], 5);
    assert!(j["error"].as_str().unwrap().contains("missing.img"));
    let o = d.run(&["x.img", "find", "--json"]).fails(2);
    assert!(o.stderr.starts_with('{'));
}

#[test]
fn wall_clock_stamps_documents_with_host_time() {
    let d = Dir::new();
    d.image("a.img");
    d.k("a.img", &["insert", "t", "{}", "--wall-clock"]).ok();
    let doc = d.k("a.img", &["get", "t", "1", "--json"]).ok().json();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let ts = doc["_ts"].as_u64().unwrap();
    assert!(ts > now - 600_000 && ts <= now + 1000, "{ts} vs {now}");
    // Without it, time only moves on by the database's step at each open.
    d.k("a.img", &["insert", "t", "{}"]).ok();
    let doc = d.k("a.img", &["get", "t", "2", "--json"]).ok().json();
    assert!(doc["_ts"].as_u64().unwrap() >= ts);
}
