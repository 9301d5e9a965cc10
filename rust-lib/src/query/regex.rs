//! A small backtracking matcher for `$regex` (cargo feature `regex`).
//!
//! Syntax: literals, `.` (any character), `*` `+` `?` (greedy), `^` `$` (start and end of
//! the string), classes `[a-z0-9_]` / `[^...]`, escapes `\d \w \s` (ASCII) and their negations
//! `\D \W \S`, `\n \t \r`, `\` before any ASCII punctuation for the literal, alternation `|`,
//! groups `( )` and `(?: )`. Anything else that PCRE gives a meaning to (`{n,m}`, lazy or
//! possessive quantifiers, other escapes) is refused rather than misread. Matching is
//! unanchored (the pattern may match anywhere) and works on characters.
//!
//! The pattern compiles to a tiny program run by a backtracking VM with a heap stack, so the
//! Rust stack never grows with the input. Every VM step counts against a budget; running out
//! is an error, never a hang. A loop whose body can match the empty string only repeats after
//! consuming input, so `(a*)*` terminates.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::iter::Peekable;
use core::str::Chars;

use crate::error::{Error, Result};

/// Most entries of the backtracking stack (12 bytes each), whatever the step budget.
const MAX_STACK: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Regex {
    prog: Vec<Inst>,
    classes: Vec<Class>,
    regs: usize,
    icase: bool,
    steps: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Inst {
    Char(char),
    Any,
    /// Index into `classes`.
    Class(u32),
    Bol,
    Eol,
    /// Try the first target, backtrack to the second.
    Split(u32, u32),
    Jmp(u32),
    /// Remember the position in a register (restored on backtracking).
    Mark(u32),
    /// Fail unless input was consumed since the register's `Mark`.
    Progress(u32),
    Match,
}

#[derive(Debug, Clone, PartialEq)]
struct Class {
    negated: bool,
    items: Vec<Item>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Range(char, char),
    /// `\d`, `\w`, `\s` (`false`) or `\D`, `\W`, `\S` (`true`).
    Digit(bool),
    Word(bool),
    Space(bool),
}

impl Item {
    fn has(self, c: char) -> bool {
        match self {
            Item::Range(lo, hi) => lo <= c && c <= hi,
            Item::Digit(neg) => c.is_ascii_digit() != neg,
            Item::Word(neg) => (c.is_ascii_alphanumeric() || c == '_') != neg,
            Item::Space(neg) => c.is_ascii_whitespace() != neg,
        }
    }
}

impl Class {
    fn has(&self, c: char, icase: bool) -> bool {
        let hit = |c: char| self.items.iter().any(|it| it.has(c));
        let found =
            hit(c) || (icase && (hit(c.to_ascii_lowercase()) || hit(c.to_ascii_uppercase())));
        found != self.negated
    }
}

/// Parse tree; its depth is bounded by the group nesting limit.
enum Re {
    Char(char),
    Any,
    Class(Class),
    Bol,
    Eol,
    Cat(Vec<Re>),
    Alt(Vec<Re>),
    Star(Box<Re>),
    Plus(Box<Re>),
    Opt(Box<Re>),
}

fn nullable(re: &Re) -> bool {
    match re {
        Re::Char(_) | Re::Any | Re::Class(_) => false,
        Re::Bol | Re::Eol | Re::Star(_) | Re::Opt(_) => true,
        Re::Plus(e) => nullable(e),
        Re::Cat(v) => v.iter().all(nullable),
        Re::Alt(v) => v.iter().any(nullable),
    }
}

struct Parser<'a> {
    it: Peekable<Chars<'a>>,
    depth: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn alt(&mut self) -> Result<Re> {
        let mut alts = alloc::vec![self.concat()?];
        while self.it.next_if_eq(&'|').is_some() {
            alts.push(self.concat()?);
        }
        Ok(match alts.pop() {
            Some(r) if alts.is_empty() => r,
            Some(r) => {
                alts.push(r);
                Re::Alt(alts)
            }
            None => Re::Cat(Vec::new()),
        })
    }

    fn concat(&mut self) -> Result<Re> {
        let mut items = Vec::new();
        while let Some(&c) = self.it.peek() {
            if c == '|' || c == ')' {
                break;
            }
            self.it.next();
            let item = match c {
                '*' | '+' | '?' => {
                    // A quantifier needs a quantifiable atom (no `a**`, `a*?`, `^*`, `*a`).
                    let atom = match items.pop() {
                        Some(Re::Bol | Re::Eol | Re::Star(_) | Re::Plus(_) | Re::Opt(_)) | None => {
                            return Err(Error::BadFilter)
                        }
                        Some(a) => Box::new(a),
                    };
                    match c {
                        '*' => Re::Star(atom),
                        '+' => Re::Plus(atom),
                        _ => Re::Opt(atom),
                    }
                }
                _ => self.atom(c)?,
            };
            items.push(item);
        }
        Ok(Re::Cat(items))
    }

    fn atom(&mut self, c: char) -> Result<Re> {
        Ok(match c {
            '.' => Re::Any,
            '^' => Re::Bol,
            '$' => Re::Eol,
            '(' => {
                if self.it.next_if_eq(&'?').is_some() && self.it.next() != Some(':') {
                    return Err(Error::BadFilter);
                }
                self.depth += 1;
                if self.depth > self.max_depth {
                    return Err(Error::TooDeep);
                }
                let r = self.alt()?;
                self.depth -= 1;
                if self.it.next() != Some(')') {
                    return Err(Error::BadFilter);
                }
                r
            }
            '[' => Re::Class(self.class()?),
            '\\' => {
                let e = self.it.next().ok_or(Error::BadFilter)?;
                match class_escape(e) {
                    Some(item) => Re::Class(Class {
                        negated: false,
                        items: alloc::vec![item],
                    }),
                    None => Re::Char(literal_escape(e)?),
                }
            }
            '{' | '}' => return Err(Error::BadFilter),
            c => Re::Char(c),
        })
    }

    /// After `[`: items up to the closing `]` (`]` always closes; escape it to include it).
    fn class(&mut self) -> Result<Class> {
        let negated = self.it.next_if_eq(&'^').is_some();
        let mut items = Vec::new();
        loop {
            let lo = match self.it.next().ok_or(Error::BadFilter)? {
                ']' => break,
                '\\' => {
                    let e = self.it.next().ok_or(Error::BadFilter)?;
                    if let Some(item) = class_escape(e) {
                        items.push(item);
                        continue;
                    }
                    literal_escape(e)?
                }
                c => c,
            };
            // `-` between two characters is a range; first or last it is literal.
            if self.it.peek() == Some(&'-') {
                self.it.next();
                let hi = match self.it.next().ok_or(Error::BadFilter)? {
                    ']' => {
                        items.push(Item::Range(lo, lo));
                        items.push(Item::Range('-', '-'));
                        break;
                    }
                    '\\' => literal_escape(self.it.next().ok_or(Error::BadFilter)?)?,
                    h => h,
                };
                if hi < lo {
                    return Err(Error::BadFilter);
                }
                items.push(Item::Range(lo, hi));
            } else {
                items.push(Item::Range(lo, lo));
            }
        }
        Ok(Class { negated, items })
    }
}

fn class_escape(e: char) -> Option<Item> {
    Some(match e {
        'd' => Item::Digit(false),
        'D' => Item::Digit(true),
        'w' => Item::Word(false),
        'W' => Item::Word(true),
        's' => Item::Space(false),
        'S' => Item::Space(true),
        _ => return None,
    })
}

fn literal_escape(e: char) -> Result<char> {
    match e {
        'n' => Ok('\n'),
        't' => Ok('\t'),
        'r' => Ok('\r'),
        c if c.is_ascii_punctuation() => Ok(c),
        _ => Err(Error::BadFilter),
    }
}

struct Compiler {
    prog: Vec<Inst>,
    classes: Vec<Class>,
    regs: u32,
}

impl Compiler {
    fn pc(&self) -> Result<u32> {
        u32::try_from(self.prog.len()).map_err(|_| Error::TooLarge)
    }

    fn patch(&mut self, at: u32, inst: Inst) {
        if let Some(slot) = self.prog.get_mut(at as usize) {
            *slot = inst;
        }
    }

    /// A register for a loop whose body can match empty.
    fn loop_reg(&mut self, body: &Re) -> Option<u32> {
        nullable(body).then(|| {
            self.regs += 1;
            self.regs - 1
        })
    }

    fn emit(&mut self, re: Re) -> Result<()> {
        match re {
            Re::Char(c) => self.prog.push(Inst::Char(c)),
            Re::Any => self.prog.push(Inst::Any),
            Re::Bol => self.prog.push(Inst::Bol),
            Re::Eol => self.prog.push(Inst::Eol),
            Re::Class(c) => {
                let i = u32::try_from(self.classes.len()).map_err(|_| Error::TooLarge)?;
                self.classes.push(c);
                self.prog.push(Inst::Class(i));
            }
            Re::Cat(v) => {
                for r in v {
                    self.emit(r)?;
                }
            }
            Re::Alt(v) => {
                // split L1,L2; L1: a; jmp end; L2: split ...; last alternative; end:
                let n = v.len();
                let mut jumps = Vec::new();
                for (i, r) in v.into_iter().enumerate() {
                    if i + 1 == n {
                        self.emit(r)?;
                        break;
                    }
                    let split = self.pc()?;
                    self.prog.push(Inst::Split(0, 0));
                    self.emit(r)?;
                    jumps.push(self.pc()?);
                    self.prog.push(Inst::Jmp(0));
                    let next = self.pc()?;
                    self.patch(split, Inst::Split(split + 1, next));
                }
                let end = self.pc()?;
                for j in jumps {
                    self.patch(j, Inst::Jmp(end));
                }
            }
            Re::Opt(e) => {
                let split = self.pc()?;
                self.prog.push(Inst::Split(0, 0));
                self.emit(*e)?;
                let end = self.pc()?;
                self.patch(split, Inst::Split(split + 1, end));
            }
            Re::Star(e) => {
                // top: split body,end; body: [mark] e [progress]; jmp top; end:
                let reg = self.loop_reg(&e);
                let top = self.pc()?;
                self.prog.push(Inst::Split(0, 0));
                if let Some(r) = reg {
                    self.prog.push(Inst::Mark(r));
                }
                self.emit(*e)?;
                if let Some(r) = reg {
                    self.prog.push(Inst::Progress(r));
                }
                self.prog.push(Inst::Jmp(top));
                let end = self.pc()?;
                self.patch(top, Inst::Split(top + 1, end));
            }
            Re::Plus(e) => {
                // top: [mark] e; split top,end  (nullable: split again,end; again: progress; jmp top)
                let reg = self.loop_reg(&e);
                let top = self.pc()?;
                if let Some(r) = reg {
                    self.prog.push(Inst::Mark(r));
                }
                self.emit(*e)?;
                let s = self.pc()?;
                match reg {
                    None => self.prog.push(Inst::Split(top, s + 1)),
                    Some(r) => {
                        self.prog.push(Inst::Split(s + 1, s + 3));
                        self.prog.push(Inst::Progress(r));
                        self.prog.push(Inst::Jmp(top));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A backtracking point: resume at (pc, pos), or restore a register.
enum Bt {
    Alt(u32, u32),
    Restore(u32, u32),
}

fn char_at(s: &str, pos: u32) -> Option<char> {
    s.get(pos as usize..)?.chars().next()
}

impl Regex {
    /// Compiles `pattern`. Errors: [`Error::BadFilter`] for bad or unsupported syntax,
    /// [`Error::TooDeep`] for groups nested deeper than `max_depth`.
    pub(crate) fn new(pattern: &str, icase: bool, max_depth: usize, steps: u32) -> Result<Self> {
        let mut p = Parser {
            it: pattern.chars().peekable(),
            depth: 0,
            max_depth,
        };
        let re = p.alt()?;
        if p.it.next().is_some() {
            // An unbalanced `)`.
            return Err(Error::BadFilter);
        }
        let mut c = Compiler {
            prog: Vec::new(),
            classes: Vec::new(),
            regs: 0,
        };
        c.emit(re)?;
        c.prog.push(Inst::Match);
        Ok(Regex {
            prog: c.prog,
            classes: c.classes,
            regs: c.regs as usize,
            icase,
            steps,
        })
    }

    /// Whether the pattern matches somewhere in `s`. [`Error::TooLarge`] if the step budget
    /// (or the backtracking stack bound) runs out first.
    pub(crate) fn is_match(&self, s: &str) -> Result<bool> {
        if u32::try_from(s.len()).is_err() {
            return Err(Error::TooLarge);
        }
        let mut budget = self.steps;
        let mut stack = Vec::new();
        let mut regs = alloc::vec![u32::MAX; self.regs];
        let mut start = 0u32;
        loop {
            if self.run(s, start, &mut budget, &mut stack, &mut regs)? {
                return Ok(true);
            }
            match char_at(s, start) {
                Some(c) => start += c.len_utf8() as u32,
                None => return Ok(false),
            }
        }
    }

    fn run(
        &self,
        s: &str,
        start: u32,
        budget: &mut u32,
        stack: &mut Vec<Bt>,
        regs: &mut [u32],
    ) -> Result<bool> {
        stack.clear();
        stack.push(Bt::Alt(0, start));
        while let Some(bt) = stack.pop() {
            let (mut pc, mut pos) = match bt {
                Bt::Alt(pc, pos) => (pc, pos),
                Bt::Restore(r, v) => {
                    if let Some(slot) = regs.get_mut(r as usize) {
                        *slot = v;
                    }
                    continue;
                }
            };
            // Run one thread until it fails (then backtrack) or matches.
            loop {
                *budget = budget.checked_sub(1).ok_or(Error::TooLarge)?;
                let Some(&inst) = self.prog.get(pc as usize) else {
                    break;
                };
                pc += 1;
                match inst {
                    Inst::Char(want) => match char_at(s, pos) {
                        Some(c) if c == want || (self.icase && c.eq_ignore_ascii_case(&want)) => {
                            pos += c.len_utf8() as u32;
                        }
                        _ => break,
                    },
                    Inst::Any => match char_at(s, pos) {
                        Some(c) => pos += c.len_utf8() as u32,
                        None => break,
                    },
                    Inst::Class(i) => match (char_at(s, pos), self.classes.get(i as usize)) {
                        (Some(c), Some(cl)) if cl.has(c, self.icase) => pos += c.len_utf8() as u32,
                        _ => break,
                    },
                    Inst::Bol if pos == 0 => {}
                    Inst::Eol if pos as usize == s.len() => {}
                    Inst::Bol | Inst::Eol => break,
                    Inst::Split(a, b) => {
                        if stack.len() >= MAX_STACK {
                            return Err(Error::TooLarge);
                        }
                        stack.push(Bt::Alt(b, pos));
                        pc = a;
                    }
                    Inst::Jmp(a) => pc = a,
                    Inst::Mark(r) => {
                        let Some(slot) = regs.get_mut(r as usize) else {
                            break;
                        };
                        if stack.len() >= MAX_STACK {
                            return Err(Error::TooLarge);
                        }
                        stack.push(Bt::Restore(r, *slot));
                        *slot = pos;
                    }
                    Inst::Progress(r) => {
                        if regs.get(r as usize) == Some(&pos) {
                            break;
                        }
                    }
                    Inst::Match => return Ok(true),
                }
            }
        }
        Ok(false)
    }
}
