//! The interactive shell, in the manner of sqlite3's: the commands of the command line without
//! the image (it stays open), with history and completion. Fed from a pipe it reads commands
//! line by line without prompts, and its exit status is that of the first command that failed.

use crate::cli::{Cmd, ShellLine};
use crate::error::{print_error, CliError, Res};
use crate::image::{ImageOpts, Mode, Session};
use crate::out::Out;
use clap::{CommandFactory, Parser};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

/// Completion of command names, subcommands, long options and the image's collection and
/// namespace names.
pub struct Helper {
    /// The image's collection and namespace names (refreshed after each command).
    names: Vec<String>,
}

/// Names of the subcommands of `cmd` (aliases included).
fn subcommands(cmd: &clap::Command) -> Vec<String> {
    let mut v = Vec::new();
    for c in cmd.get_subcommands() {
        v.push(c.get_name().to_string());
        v.extend(c.get_visible_aliases().map(str::to_string));
    }
    v
}

impl Helper {
    /// Candidates for the word at the end of `before` + `word`.
    fn candidates(&self, before: &[String], word: &str) -> Vec<String> {
        let root = ShellLine::command();
        let mut pool: Vec<String> = Vec::new();
        if before.is_empty() {
            pool = subcommands(&root);
            pool.extend(["quit", "exit", ".mode"].map(str::to_string));
        } else {
            // Walk down to the deepest subcommand named so far.
            let mut cmd = &root;
            for w in before {
                if w == "help" {
                    pool.extend(subcommands(&root));
                }
                if let Some(c) = cmd.find_subcommand(w) {
                    cmd = c;
                }
            }
            if word.starts_with('-') {
                pool.extend(
                    cmd.get_arguments()
                        .filter_map(|a| a.get_long())
                        .map(|l| format!("--{l}")),
                );
                pool.push("--json".into());
            } else {
                pool.extend(subcommands(cmd));
                pool.extend(self.names.iter().cloned());
                if before.first().is_some_and(|w| w == ".mode") {
                    pool.extend(["json", "text"].map(str::to_string));
                }
            }
        }
        pool.sort();
        pool.dedup();
        pool.into_iter().filter(|c| c.starts_with(word)).collect()
    }
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = line.get(..pos).unwrap_or(line);
        let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = head.get(start..).unwrap_or("");
        let before: Vec<String> = head
            .get(..start)
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let pairs = self
            .candidates(&before, word)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Helper {
    type Hint = String;
}
impl Highlighter for Helper {}
impl Validator for Helper {}
impl rustyline::Helper for Helper {}

fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CAIRN_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cairn_history"))
}

fn names(s: &mut Session) -> Vec<String> {
    let mut v = s.db.collections().unwrap_or_default();
    v.extend(s.db.namespaces().unwrap_or_default());
    v
}

/// What a line asks for.
enum Step {
    Quit,
    Next,
}

/// Lines of input: rustyline on a terminal, plain lines from a pipe.
enum Input {
    Tty(Box<Editor<Helper, DefaultHistory>>),
    Pipe(std::io::StdinLock<'static>),
}

impl Input {
    /// The next line, or None at the end of the input.
    fn line(&mut self) -> Res<Option<String>> {
        match self {
            Input::Tty(rl) => loop {
                match rl.readline("cairn> ") {
                    Ok(l) => {
                        if !l.trim().is_empty() {
                            let _ = rl.add_history_entry(l.as_str());
                        }
                        return Ok(Some(l));
                    }
                    // Ctrl-C drops the line being typed, as in sqlite3; Ctrl-D leaves.
                    Err(ReadlineError::Interrupted) => continue,
                    Err(ReadlineError::Eof) => return Ok(None),
                    Err(e) => return Err(CliError::failed(format!("terminal: {e}"))),
                }
            },
            Input::Pipe(stdin) => {
                let mut l = String::new();
                match stdin.read_line(&mut l) {
                    Ok(0) => Ok(None),
                    Ok(_) => Ok(Some(l)),
                    Err(e) => Err(CliError::failed(format!("stdin: {e}"))),
                }
            }
        }
    }
}

/// Run the shell on `path`; returns the exit status.
pub fn run(path: &Path, opts: &ImageOpts, out: &Out, read_only: bool) -> Res<u8> {
    let mode = if read_only {
        Mode::ReadOnly
    } else {
        Mode::ReadWrite
    };
    let mut s = Session::open(path, opts, mode)?;
    let interactive = std::io::stdin().is_terminal();
    let history = history_path();
    let mut input = if interactive {
        let mut rl = Editor::<Helper, DefaultHistory>::new()
            .map_err(|e| CliError::failed(format!("terminal: {e}")))?;
        rl.set_helper(Some(Helper {
            names: names(&mut s),
        }));
        if let Some(h) = &history {
            let _ = rl.load_history(h);
        }
        println!(
            "cairn {} shell on {}{}. `help` lists the commands, `help COMMAND` explains one, \
             `quit` or Ctrl-D leaves.",
            env!("CARGO_PKG_VERSION"),
            path.display(),
            if read_only { " (read-only)" } else { "" }
        );
        Input::Tty(Box::new(rl))
    } else {
        Input::Pipe(std::io::stdin().lock())
    };
    let mut json = out.json;
    let mut first_failure: Option<u8> = None;
    let result = loop {
        let line = match input.line() {
            Ok(Some(l)) => l,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let mut fail = |e: CliError, json: bool| {
            print_error(&e, json);
            first_failure.get_or_insert(e.code);
        };
        match step(&mut s, line.trim(), &mut json, out, opts) {
            Ok(Step::Quit) => break Ok(()),
            Ok(Step::Next) => {}
            Err(e) => fail(e, json),
        }
        if let Input::Tty(rl) = &mut input {
            let n = names(&mut s);
            if let Some(h) = rl.helper_mut() {
                h.names = n;
            }
        }
    };
    if let (Input::Tty(rl), Some(h)) = (&mut input, &history) {
        let _ = rl.save_history(h);
    }
    let closed = s.close();
    result?;
    closed?;
    Ok(if interactive {
        0
    } else {
        first_failure.unwrap_or(0)
    })
}

fn step(s: &mut Session, line: &str, json: &mut bool, out: &Out, opts: &ImageOpts) -> Res<Step> {
    if line.is_empty() || line.starts_with('#') {
        return Ok(Step::Next);
    }
    let words = shell_words::split(line)
        .map_err(|e| CliError::usage(format!("cannot split the line: {e}")))?;
    let first = words.first().map(String::as_str).unwrap_or("");
    match first {
        "quit" | "exit" | ".quit" | ".exit" | ".q" => return Ok(Step::Quit),
        "help" | ".help" | "?" => {
            let mut args: Vec<String> = words.iter().skip(1).cloned().collect();
            if args.is_empty() {
                let mut cmd = ShellLine::command();
                println!("{}", cmd.render_help());
                return Ok(Step::Next);
            }
            args.push("--help".into());
            return parse_and_run(s, &args, json, out, opts);
        }
        ".mode" => {
            match words.get(1).map(String::as_str) {
                Some("json") => *json = true,
                Some("text") => *json = false,
                _ => return Err(CliError::usage(".mode json|text")),
            }
            return Ok(Step::Next);
        }
        _ => {}
    }
    parse_and_run(s, &words, json, out, opts)
}

fn parse_and_run(
    s: &mut Session,
    words: &[String],
    json: &mut bool,
    out: &Out,
    opts: &ImageOpts,
) -> Res<Step> {
    let parsed = match ShellLine::try_parse_from(words) {
        Ok(p) => p,
        Err(e) => {
            if e.use_stderr() {
                let msg = crate::clap_message(&e);
                let msg = msg.strip_suffix(" (see --help)").unwrap_or(&msg);
                return Err(CliError::usage(format!(
                    "{msg} (`help {}` explains)",
                    words.first().map(String::as_str).unwrap_or("")
                )));
            }
            // --help and the like.
            let _ = e.print();
            return Ok(Step::Next);
        }
    };
    let out = Out {
        json: *json || parsed.json,
        quiet: out.quiet,
    };
    let r = match &parsed.cmd {
        // The open handle repairs as it is (a log with bad frames is repaired by the one-shot
        // `repair`, which opens the image for it).
        Cmd::Repair => crate::maint::repair(s, &out),
        cmd => crate::exec(s, cmd, &out, opts),
    };
    match r {
        Ok(()) => Ok(Step::Next),
        Err(e) if out.json != *json => {
            print_error(&e, out.json);
            Err(CliError::new(e.code, String::new())).or(Ok(Step::Next))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_commands_options_and_names() {
        let h = Helper {
            names: vec!["readings".into(), "config".into()],
        };
        assert!(h.candidates(&[], "fi").contains(&"find".to_string()));
        assert!(h.candidates(&[], "q").contains(&"quit".to_string()));
        let w = |s: &str| vec![s.to_string()];
        assert_eq!(h.candidates(&w("find"), "re"), vec!["readings".to_string()]);
        assert!(h
            .candidates(&w("find"), "--li")
            .contains(&"--limit".to_string()));
        assert!(h.candidates(&w("kv"), "p").contains(&"put".to_string()));
        assert!(h
            .candidates(&w("help"), "exp")
            .contains(&"export".to_string()));
    }
}
