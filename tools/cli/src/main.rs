//! `cairn`: the host tool for cairndb device images. See README.md beside Cargo.toml.

mod cli;
mod cmds;
mod error;
mod image;
mod keys;
mod maint;
mod out;
mod shell;
mod transfer;

use clap::Parser;
use cli::{Cli, Cmd, CreateArgs, GlobalOpts, KvCmd};
use error::{print_error, CliError, Res};
use image::{ImageOpts, Mode, Session};
use out::Out;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A bug must still end in one line and a documented code, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("cairn: internal error: {msg}");
        std::process::exit(i32::from(error::EXIT_FAILED));
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let json = std::env::args().any(|a| a == "--json");
            print_error(&CliError::usage(clap_message(&e)), json);
            return ExitCode::from(error::EXIT_USAGE);
        }
    };
    let out = Out {
        json: cli.opts.json,
        quiet: cli.opts.quiet,
    };
    match run(&cli, &out) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            print_error(&e, out.json);
            ExitCode::from(e.code)
        }
    }
}

/// clap's error as one line: its message without the usage block, and where to read more.
pub fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    let msg = parts.join(" ");
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
    format!("{msg} (see --help)")
}

/// The image options from the global command-line options.
fn image_opts(g: &GlobalOpts) -> Res<ImageOpts> {
    let k = &g.key;
    let given = [
        k.key_file.is_some(),
        k.key_hex.is_some(),
        k.passphrase.is_some(),
        k.passphrase_file.is_some(),
    ];
    if given.iter().filter(|x| **x).count() > 1 {
        return Err(CliError::usage(
            "give at most one of --key-file, --key-hex, --passphrase (or CAIRN_PASSPHRASE), \
             --passphrase-file",
        ));
    }
    let key = keys::resolve(
        k.key_file.as_ref(),
        k.key_hex.as_deref(),
        k.passphrase.as_deref(),
        k.passphrase_file.as_ref(),
    )?;
    if k.kdf_iterations == 0 {
        return Err(CliError::usage("--kdf-iterations must be at least 1"));
    }
    let mut config = cairndb::db::Config::default();
    let l = &g.limits;
    let set = |v: Option<usize>, d: &mut usize| {
        if let Some(v) = v {
            *d = v;
        }
    };
    set(l.max_doc_bytes, &mut config.max_doc_bytes);
    set(l.max_depth, &mut config.max_depth);
    set(l.max_name_len, &mut config.max_name_len);
    set(l.max_key_len, &mut config.max_key_len);
    set(l.max_value_len, &mut config.max_value_len);
    // A host sorts in RAM freely; the bound changes nothing on flash.
    config.max_sort_docs = l.max_sort_docs.unwrap_or(100_000);
    if config.max_depth == 0 || config.max_depth > cairndb::value::MAX_DEPTH_LIMIT {
        return Err(CliError::usage(format!(
            "--max-depth must be 1 to {}",
            cairndb::value::MAX_DEPTH_LIMIT
        )));
    }
    Ok(ImageOpts {
        block_size: g.geometry.block_size,
        block_count: g.geometry.block_count,
        read_size: g.geometry.read_size,
        prog_size: g.geometry.prog_size,
        config,
        key,
        kdf_iterations: k.kdf_iterations,
        wall_clock: g.wall_clock,
        sync_each: g.sync,
    })
}

fn run(cli: &Cli, out: &Out) -> Res<u8> {
    let opts = image_opts(&cli.opts)?;
    let path = cli.image.as_path();
    match &cli.cmd {
        None => shell::run(path, &opts, out, false),
        Some(Cmd::Shell(a)) => shell::run(path, &opts, out, a.read_only),
        Some(Cmd::Create(a)) => create(path, &opts, a, out).map(|_| error::EXIT_OK),
        Some(Cmd::Lfs(c)) => cmds::lfs(path, c, out, &opts).map(|_| error::EXIT_OK),
        Some(cmd) => {
            let mut s = Session::open(path, &opts, mode_of(cmd))?;
            let r = exec(&mut s, cmd, out, &opts);
            let closed = s.close();
            r.and(closed).map(|_| error::EXIT_OK)
        }
    }
}

/// How a command opens the image: read-only unless it writes.
fn mode_of(cmd: &Cmd) -> Mode {
    match cmd {
        Cmd::Info
        | Cmd::Stats
        | Cmd::Ls(_)
        | Cmd::Find(_)
        | Cmd::Get(_)
        | Cmd::Export(_)
        | Cmd::VerifyBackup(_)
        | Cmd::Lfs(_)
        | Cmd::Kv(KvCmd::Get { .. } | KvCmd::Ls { .. })
        | Cmd::Index(cli::IndexCmd::List { .. }) => Mode::ReadOnly,
        Cmd::Schema(a) if a.set.is_none() && !a.clear => Mode::ReadOnly,
        Cmd::Check(a) if !a.repair => Mode::ReadOnly,
        Cmd::Check(_) | Cmd::Repair => Mode::Repair,
        _ => Mode::ReadWrite,
    }
}

/// Run a command on an open session (the one-shot command line and the shell).
pub fn exec(s: &mut Session, cmd: &Cmd, out: &Out, opts: &ImageOpts) -> Res<()> {
    match cmd {
        Cmd::Create(_) => Err(CliError::usage(
            "create makes a new image: run `cairn NEW.img create ...` outside the shell",
        )),
        Cmd::Shell(_) => Err(CliError::usage("already in the shell")),
        Cmd::Info => cmds::info(s, out),
        Cmd::Stats => cmds::stats(s, out),
        Cmd::Ls(a) => cmds::ls(s, a, out, opts),
        Cmd::Find(a) => cmds::find(s, a, out, opts),
        Cmd::Get(a) => cmds::get(s, &a.collection, a.id, out),
        Cmd::Insert(a) => cmds::insert(
            s,
            &a.collection,
            a.document.as_deref(),
            a.ttl,
            &a.tags,
            out,
            opts,
        ),
        Cmd::Patch(a) => cmds::patch(s, &a.collection, a.id, &a.patch, out, opts),
        Cmd::Replace(a) => cmds::replace(s, &a.collection, a.id, &a.document, out, opts),
        Cmd::Delete(a) => cmds::delete(s, a, out, opts),
        Cmd::Drop(a) => cmds::drop_collection(s, &a.collection, out),
        Cmd::Schema(a) => cmds::schema(s, a, out, opts),
        Cmd::Kv(c) => cmds::kv(s, c, out),
        Cmd::Import(a) => transfer::import(s, a, out, opts),
        Cmd::Export(a) => transfer::export(s, a, out),
        Cmd::Backup(a) => maint::backup(s, a, out, opts),
        Cmd::Restore(a) => maint::restore(s, a, out, opts),
        Cmd::VerifyBackup(a) => maint::verify(s, a, out, opts),
        Cmd::Check(a) => maint::check(s, a.repair, out),
        Cmd::Repair => maint::repair(s, out),
        Cmd::Rekey(a) => maint::rekey(s, a, out, opts),
        Cmd::Index(c) => cmds::index(s, c, out, opts),
        Cmd::Compact => maint::compact(s, out),
        Cmd::Lfs(c) => {
            let path = s.path.clone();
            cmds::lfs(&path, c, out, opts)
        }
    }
}

/// `12345`, `256K`, `4M` (binary units).
fn parse_size(text: &str) -> Res<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1024u64),
        Some((i, 'm' | 'M')) => (&t[..i], 1024 * 1024),
        Some((i, 'g' | 'G')) => (&t[..i], 1024 * 1024 * 1024),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            CliError::usage(format!(
                "--size: `{text}` is not a size (e.g. 262144, 256K, 4M)"
            ))
        })
}

fn create(path: &Path, opts: &ImageOpts, a: &CreateArgs, out: &Out) -> Res<()> {
    let bs = opts.block_size.unwrap_or(image::DEFAULT_BLOCK_SIZE);
    let count = match (&a.size, opts.block_count) {
        (Some(_), Some(_)) => {
            return Err(CliError::usage(
                "create: give --block-count or --size, not both",
            ))
        }
        (Some(size), None) => {
            let bytes = parse_size(size)?;
            if bytes % u64::from(bs) != 0 {
                return Err(CliError::usage(format!(
                    "--size {size} is not a whole number of {bs}-byte blocks"
                )));
            }
            u32::try_from(bytes / u64::from(bs))
                .map_err(|_| CliError::usage("--size: too many blocks"))?
        }
        (None, Some(c)) => c,
        (None, None) => {
            return Err(CliError::usage(
                "create: give --block-count (or --size) for the image",
            ))
        }
    };
    let g = cairndb::flash::Geometry {
        read_size: opts.read_size,
        prog_size: opts.prog_size,
        block_size: bs,
        block_count: count,
    };
    let s = Session::create(path, opts, g, a.force)?;
    let enc = image::encryption_text(&s.header);
    s.close()?;
    out.emit(
        serde_json::json!({"image": path.display().to_string(), "block_size": bs,
            "block_count": count, "read_size": g.read_size, "prog_size": g.prog_size,
            "bytes": g.capacity(), "encryption": enc}),
        || {
            format!(
                "created {}: {count} blocks of {bs} bytes ({} bytes), encryption: {enc}",
                path.display(),
                g.capacity()
            )
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("262144").unwrap(), 262_144);
        assert_eq!(parse_size("256K").unwrap(), 262_144);
        assert_eq!(parse_size("4m").unwrap(), 4 << 20);
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        cli::ShellLine::command().debug_assert();
    }
}
