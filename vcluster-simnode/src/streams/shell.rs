//! The simulated container's shell: a small POSIX-like interpreter over
//! the container's in-memory [`Files`], enough for what people type into
//! `kubectl exec` (`env`, `hostname`, `cat`, `ls`, `echo ... > file`,
//! pipes, `&&`, `exit 3`, an interactive `sh` in a terminal) and for
//! `kubectl cp`, which runs `tar` and `test`. Anything else answers
//! `not found` with exit code 127, as a shell would.

use std::io::Cursor;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::files::{normalize, Files};

/// Where a command reads from.
pub(crate) enum Input {
    /// Nothing (end of file at once).
    Empty,
    /// The client's stdin.
    Stream(Pin<Box<dyn AsyncRead + Send>>),
    /// A pipe's or a file's content.
    Bytes(Cursor<Vec<u8>>),
}

impl Input {
    async fn read(&mut self, buf: &mut [u8]) -> usize {
        match self {
            Self::Empty => 0,
            Self::Stream(r) => r.read(buf).await.unwrap_or(0),
            Self::Bytes(c) => std::io::Read::read(c, buf).unwrap_or(0),
        }
    }

    pub(crate) async fn read_all(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = self.read(&mut buf).await;
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

/// A client's output stream, shared when stderr goes where stdout goes.
pub(crate) type Stream = Arc<tokio::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>>;

/// Where a command writes.
pub(crate) enum Output {
    /// To the client; `tty` turns `\n` into `\r\n` as a terminal does.
    Stream { to: Stream, tty: bool },
    /// Into a pipe or a file, written when the command ends.
    Buffer(Vec<u8>),
    /// Nowhere (`2>/dev/null`).
    Null,
}

impl Output {
    pub(crate) async fn write(&mut self, data: &[u8]) {
        match self {
            Self::Stream { to, tty } => {
                let data = if *tty {
                    let text = data
                        .iter()
                        .flat_map(|&b| {
                            if b == b'\n' {
                                vec![b'\r', b'\n']
                            } else {
                                vec![b]
                            }
                        })
                        .collect::<Vec<u8>>();
                    std::borrow::Cow::Owned(text)
                } else {
                    std::borrow::Cow::Borrowed(data)
                };
                let mut to = to.lock().await;
                let _ = to.write_all(&data).await;
                let _ = to.flush().await;
            }
            Self::Buffer(buffer) => buffer.extend_from_slice(data),
            Self::Null => {}
        }
    }

    /// A line of text.
    pub(crate) async fn line(&mut self, text: &str) {
        self.write(format!("{text}\n").as_bytes()).await;
    }
}

/// What ran: a status, or `exit` asking the shell to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Status(i32),
    Exit(i32),
}

impl Flow {
    fn code(self) -> i32 {
        match self {
            Self::Status(c) | Self::Exit(c) => c,
        }
    }
}

/// One container's shell state.
pub(crate) struct Shell {
    pub files: Arc<Mutex<Files>>,
    pub env: Vec<(String, String)>,
    pub last: i32,
}

/// Brackets a variable's name in a word until its command runs.
const MARK: char = '\u{1}';
/// Starts a marked name that stood in double quotes (no word splitting).
const QUOTED: char = '\u{2}';

/// A token of a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Op(&'static str),
}

/// Splits a line into words and operators, with quotes, escapes and
/// `$VAR` expansion (not inside single quotes).
fn tokenize(line: &str, vars: &dyn Fn(&str) -> String) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let ops: &[&'static str] = &[
        "2>&1", "2>>", "&&", "||", ">>", "2>", ";", "|", ">", "<", "\n",
    ];
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    tokens.push(Token::Word(std::mem::take(&mut word)));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            if let Some(c) = chars.next() {
                                word.push(c);
                            }
                        }
                        Some('$') => {
                            let quoted = |name: &str| vars(&format!("{QUOTED}{name}"));
                            word.push_str(&variable(&mut chars, &quoted))
                        }
                        Some(c) => word.push(c),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            '$' => {
                in_word = true;
                word.push_str(&variable(&mut chars, vars));
            }
            '#' if !in_word => break,
            _ => {
                let rest: String = std::iter::once(c).chain(chars.clone()).collect();
                // `2>` only starts a redirection at the start of a word.
                let op = ops
                    .iter()
                    .find(|op| rest.starts_with(**op) && (!in_word || !op.starts_with('2')));
                match op {
                    Some(op) => {
                        if in_word {
                            tokens.push(Token::Word(std::mem::take(&mut word)));
                            in_word = false;
                        }
                        for _ in 1..op.len() {
                            chars.next();
                        }
                        tokens.push(Token::Op(op));
                    }
                    None => {
                        in_word = true;
                        word.push(c);
                    }
                }
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(word));
    }
    Ok(tokens)
}

/// `$NAME`, `${NAME}` or `$?` after the `$`.
fn variable(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    vars: &dyn Fn(&str) -> String,
) -> String {
    let mut name = String::new();
    if chars.peek() == Some(&'(') {
        // `$(command)`: its text, up to the matching parenthesis, runs
        // when the word is expanded.
        chars.next();
        let mut depth = 1;
        name.push('(');
        for c in chars.by_ref() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            name.push(c);
        }
        return vars(&name);
    }
    if chars.peek() == Some(&'{') {
        chars.next();
        for c in chars.by_ref() {
            if c == '}' {
                break;
            }
            name.push(c);
        }
    } else if chars.peek() == Some(&'?') {
        chars.next();
        name.push('?');
    } else {
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if name.is_empty() {
            return "$".into();
        }
    }
    vars(&name)
}

/// `for NAME in WORDS; do BODY; done` after its `for`: the name, the
/// words and the body's tokens; `None` if it does not parse.
fn parse_for(
    tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>,
) -> Option<(String, Vec<String>, Vec<Token>)> {
    let Some(Token::Word(name)) = tokens.next() else {
        return None;
    };
    let mut items = Vec::new();
    match tokens.next()? {
        Token::Word(word) if word == "in" => loop {
            match tokens.next()? {
                Token::Word(item) => items.push(item),
                Token::Op(";" | "\n") => break,
                _ => return None,
            }
        },
        _ => return None,
    }
    while matches!(tokens.peek(), Some(Token::Op("\n"))) {
        tokens.next();
    }
    match tokens.next()? {
        Token::Word(word) if word == "do" => {}
        _ => return None,
    }
    let mut depth = 1;
    let mut body = Vec::new();
    for token in tokens.by_ref() {
        match &token {
            Token::Word(word) if word == "do" => depth += 1,
            Token::Word(word) if word == "done" => {
                depth -= 1;
                if depth == 0 {
                    return Some((name, items, body));
                }
            }
            _ => {}
        }
        body.push(token);
    }
    None
}

/// One command of a pipeline with its redirections.
#[derive(Debug, Default)]
struct Command {
    words: Vec<String>,
    stdin_file: Option<String>,
    stdout_file: Option<(String, bool)>,
    stderr: Option<Redirect>,
}

#[derive(Debug)]
enum Redirect {
    ToStdout,
    File(String, bool),
}

impl Shell {
    fn var(&self, name: &str) -> String {
        let name = name.trim_start_matches(QUOTED);
        if name == "?" {
            return self.last.to_string();
        }
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Runs a script (`sh -c`), line by line.
    pub(crate) fn run_script<'a>(
        &'a mut self,
        script: &'a str,
        input: &'a mut Input,
        out: &'a mut Output,
        err: &'a mut Output,
    ) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            // Variables are marked now and expanded when their command
            // runs, so `$?` and earlier assignments are current.
            let lookup = |name: &str| format!("{MARK}{name}{MARK}");
            let tokens = match tokenize(script, &lookup) {
                Ok(tokens) => tokens,
                Err(message) => {
                    err.line(&format!("sh: syntax error: {message}")).await;
                    return Flow::Status(2);
                }
            };
            self.run_tokens(tokens, input, out, err).await
        })
    }

    /// Runs a tokenized script: `;`, `&&`, `||`, pipelines, `for` loops.
    fn run_tokens<'a>(
        &'a mut self,
        tokens: Vec<Token>,
        input: &'a mut Input,
        out: &'a mut Output,
        err: &'a mut Output,
    ) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let mut status = 0;
            let mut skip = false;
            let mut pipeline: Vec<Command> = vec![Command::default()];
            let mut tokens = tokens.into_iter().peekable();
            loop {
                let token = tokens.next();
                let end = match &token {
                    None => Some(";"),
                    Some(Token::Op(op @ (";" | "\n" | "&&" | "||"))) => Some(*op),
                    _ => None,
                };
                if let Some(end) = end {
                    let commands = std::mem::replace(&mut pipeline, vec![Command::default()]);
                    if !skip && commands.iter().any(|c| !c.words.is_empty()) {
                        let flow = self.run_pipeline(commands, input, out, err).await;
                        if let Flow::Exit(code) = flow {
                            return Flow::Exit(code);
                        }
                        status = flow.code();
                        self.last = status;
                    }
                    skip = match end {
                        "&&" => status != 0,
                        "||" => status == 0,
                        _ => false,
                    };
                    if token.is_none() {
                        return Flow::Status(status);
                    }
                    continue;
                }
                let Some(token) = token else { break };
                let at_start = pipeline.len() == 1 && pipeline[0].words.is_empty();
                let Some(command) = pipeline.last_mut() else {
                    break;
                };
                match token {
                    Token::Word(word) if word == "for" && at_start => {
                        let Some((name, items, body)) = parse_for(&mut tokens) else {
                            err.line(
                                "sh: syntax error: expected `for NAME in WORDS; do ...; done`",
                            )
                            .await;
                            return Flow::Status(2);
                        };
                        if !skip {
                            let mut values = Vec::new();
                            for item in &items {
                                values.extend(self.expand(item, input, err).await);
                            }
                            for value in values {
                                self.env.push((name.clone(), value));
                                let flow = self.run_tokens(body.clone(), input, out, err).await;
                                if let Flow::Exit(code) = flow {
                                    return Flow::Exit(code);
                                }
                                status = flow.code();
                            }
                            self.last = status;
                        }
                    }
                    Token::Word(word) => command.words.push(word),
                    Token::Op("|") => pipeline.push(Command::default()),
                    Token::Op("2>&1") => command.stderr = Some(Redirect::ToStdout),
                    Token::Op(op) => {
                        let Some(Token::Word(target)) = tokens.next() else {
                            err.line("sh: syntax error: redirection without a file")
                                .await;
                            return Flow::Status(2);
                        };
                        match op {
                            ">" => command.stdout_file = Some((target, false)),
                            ">>" => command.stdout_file = Some((target, true)),
                            "<" => command.stdin_file = Some(target),
                            "2>" => command.stderr = Some(Redirect::File(target, false)),
                            _ => command.stderr = Some(Redirect::File(target, true)),
                        }
                    }
                }
            }
            Flow::Status(status)
        })
    }

    async fn run_pipeline(
        &mut self,
        commands: Vec<Command>,
        input: &mut Input,
        out: &mut Output,
        err: &mut Output,
    ) -> Flow {
        let count = commands.len();
        let mut piped: Option<Vec<u8>> = None;
        let mut flow = Flow::Status(0);
        for (i, mut command) in commands.into_iter().enumerate() {
            let last = i + 1 == count;
            let mut words = Vec::new();
            for word in std::mem::take(&mut command.words) {
                words.extend(self.expand(&word, input, err).await);
            }
            command.words = words;
            let mut own_input = match (&command.stdin_file, piped.take()) {
                (Some(file), _) => match self.read_file(file) {
                    Some(data) => Some(Input::Bytes(Cursor::new(data))),
                    None => {
                        err.line(&format!("sh: can't open {file}: no such file"))
                            .await;
                        return Flow::Status(1);
                    }
                },
                (None, Some(data)) => Some(Input::Bytes(Cursor::new(data))),
                (None, None) if i > 0 => Some(Input::Empty),
                (None, None) => None,
            };
            let mut own_out = match (&command.stdout_file, last) {
                (Some(_), _) | (None, false) => Some(Output::Buffer(Vec::new())),
                (None, true) => None,
            };
            let mut own_err = match &command.stderr {
                Some(Redirect::File(path, _)) if path == "/dev/null" => Some(Output::Null),
                Some(Redirect::File(..)) => Some(Output::Buffer(Vec::new())),
                _ => None,
            };
            let to_stdout = matches!(command.stderr, Some(Redirect::ToStdout));
            {
                let input = own_input.as_mut().unwrap_or(&mut *input);
                let out_ref: &mut Output = own_out.as_mut().unwrap_or(&mut *out);
                flow = if to_stdout {
                    let mut merged = Output::Buffer(Vec::new());
                    let flow = self
                        .run_command(&command.words, input, out_ref, &mut merged)
                        .await;
                    if let Output::Buffer(data) = merged {
                        out_ref.write(&data).await;
                    }
                    flow
                } else {
                    let err_ref: &mut Output = own_err.as_mut().unwrap_or(&mut *err);
                    self.run_command(&command.words, input, out_ref, err_ref)
                        .await
                };
            }
            if let Some(Redirect::File(path, append)) = &command.stderr {
                if let Some(Output::Buffer(data)) = own_err {
                    if path != "/dev/null" {
                        self.write_file(path, &data, *append);
                    }
                }
            }
            match (&command.stdout_file, own_out) {
                (Some((path, append)), Some(Output::Buffer(data))) if path != "/dev/null" => {
                    self.write_file(path, &data, *append);
                }
                (None, Some(Output::Buffer(data))) => piped = Some(data),
                _ => {}
            }
            if let Flow::Exit(_) = flow {
                return flow;
            }
        }
        flow
    }

    /// A word with its marked variables and command substitutions
    /// replaced; an unquoted substitution splits into words at spaces.
    async fn expand(&mut self, word: &str, input: &mut Input, err: &mut Output) -> Vec<String> {
        if !word.contains(MARK) {
            return vec![word.to_owned()];
        }
        let mut text = String::new();
        let mut split = false;
        for (i, part) in word.split(MARK).enumerate() {
            if i % 2 == 0 {
                text.push_str(part);
                continue;
            }
            let (quoted, script) = match part.strip_prefix(QUOTED) {
                Some(rest) => (true, rest),
                None => (false, part),
            };
            match script.strip_prefix('(') {
                Some(script) => {
                    let mut captured = Output::Buffer(Vec::new());
                    let script = script.to_owned();
                    let _ = self.run_script(&script, input, &mut captured, err).await;
                    if let Output::Buffer(bytes) = captured {
                        text.push_str(String::from_utf8_lossy(&bytes).trim_end_matches('\n'));
                    }
                    split |= !quoted;
                }
                None => text.push_str(&self.var(script)),
            }
        }
        if split {
            text.split_whitespace().map(str::to_owned).collect()
        } else {
            vec![text]
        }
    }

    fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let files = self.files.lock().ok()?;
        files.read(path).map(<[u8]>::to_vec)
    }

    fn write_file(&self, path: &str, data: &[u8], append: bool) {
        if let Ok(mut files) = self.files.lock() {
            files.write(path, data, append);
        }
    }

    fn with_files<T>(&self, f: impl FnOnce(&mut Files) -> T) -> Option<T> {
        self.files.lock().ok().map(|mut files| f(&mut files))
    }

    /// Runs one command: an assignment, a builtin or `not found`.
    pub(crate) async fn run_command(
        &mut self,
        words: &[String],
        input: &mut Input,
        out: &mut Output,
        err: &mut Output,
    ) -> Flow {
        let Some((name, args)) = words.split_first() else {
            return Flow::Status(0);
        };
        if let Some((key, value)) = name.split_once('=') {
            if args.is_empty()
                && !key.is_empty()
                && key.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                self.env.push((key.to_owned(), value.to_owned()));
                return Flow::Status(0);
            }
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        let ok = Flow::Status(0);
        match base {
            "sh" | "bash" | "ash" | "dash" => {
                if let Some(pos) = args.iter().position(|a| a == "-c") {
                    let script = args.get(pos + 1).cloned().unwrap_or_default();
                    let flow = self.run_script(&script, input, out, err).await;
                    return Flow::Status(flow.code());
                }
                // Commands run as their lines arrive, as a shell reading
                // a pipe does.
                Flow::Status(Box::pin(lines(self, input, out, err, false)).await)
            }
            "exit" => Flow::Exit(
                args.first()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(self.last),
            ),
            "true" | ":" => ok,
            "seq" => {
                let numbers: Vec<i64> = args.iter().filter_map(|a| a.parse().ok()).collect();
                let (first, last) = match numbers.as_slice() {
                    [last] => (1, *last),
                    [first, last, ..] => (*first, *last),
                    [] => {
                        err.line("seq: missing operand").await;
                        return Flow::Status(1);
                    }
                };
                let mut text = String::new();
                for n in first..=last.min(first.saturating_add(100_000)) {
                    text.push_str(&format!("{n}\n"));
                }
                out.write(text.as_bytes()).await;
                ok
            }
            "false" => Flow::Status(1),
            "echo" => {
                let (newline, args) = match args.first().map(String::as_str) {
                    Some("-n") => (false, &args[1..]),
                    _ => (true, args),
                };
                let mut text = args.join(" ");
                if newline {
                    text.push('\n');
                }
                out.write(text.as_bytes()).await;
                ok
            }
            "env" | "printenv" => {
                let mut seen = std::collections::BTreeMap::new();
                for (k, v) in &self.env {
                    seen.insert(k.clone(), v.clone());
                }
                if let Some(name) = args.first().filter(|_| base == "printenv") {
                    return match seen.get(name) {
                        Some(value) => {
                            out.line(value).await;
                            ok
                        }
                        None => Flow::Status(1),
                    };
                }
                for (k, _) in &self.env {
                    if seen.remove(k).is_some() {
                        out.line(&format!("{k}={}", self.var(k))).await;
                    }
                }
                ok
            }
            "hostname" => {
                let name = self
                    .read_file("/etc/hostname")
                    .map(|h| String::from_utf8_lossy(&h).trim().to_owned())
                    .unwrap_or_default();
                out.line(&name).await;
                ok
            }
            "whoami" => {
                out.line("root").await;
                ok
            }
            "id" => {
                out.line("uid=0(root) gid=0(root) groups=0(root)").await;
                ok
            }
            "uname" => {
                out.line("Linux").await;
                ok
            }
            "pwd" => {
                out.line("/").await;
                ok
            }
            "sleep" => {
                let seconds: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
                tokio::time::sleep(std::time::Duration::from_secs_f64(
                    seconds.clamp(0.0, 3600.0),
                ))
                .await;
                ok
            }
            "cat" => {
                if args.is_empty() || args.iter().all(|a| a == "-") {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = input.read(&mut buf).await;
                        if n == 0 {
                            return ok;
                        }
                        out.write(&buf[..n]).await;
                    }
                }
                let mut status = 0;
                for file in args {
                    match self.read_file(file) {
                        Some(data) => out.write(&data).await,
                        None if self.with_files(|f| f.is_dir(file)) == Some(true) => {
                            err.line("cat: read error: Is a directory").await;
                            status = 1;
                        }
                        None => {
                            err.line(&format!(
                                "cat: can't open '{file}': No such file or directory"
                            ))
                            .await;
                            status = 1;
                        }
                    }
                }
                Flow::Status(status)
            }
            "ls" => {
                let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
                let paths = if paths.is_empty() { vec![] } else { paths };
                let targets: Vec<String> = if paths.is_empty() {
                    vec!["/".into()]
                } else {
                    paths.into_iter().cloned().collect()
                };
                let mut status = 0;
                for path in targets {
                    let listing = self.with_files(|f| {
                        if f.is_file(&path) {
                            Some(vec![path.clone()])
                        } else if f.is_dir(&path) {
                            Some(f.list(&path))
                        } else {
                            None
                        }
                    });
                    match listing.flatten() {
                        Some(names) => {
                            for name in names {
                                out.line(&name).await;
                            }
                        }
                        None => {
                            err.line(&format!("ls: {path}: No such file or directory"))
                                .await;
                            status = 1;
                        }
                    }
                }
                Flow::Status(status)
            }
            "mkdir" => {
                for dir in args.iter().filter(|a| !a.starts_with('-')) {
                    self.with_files(|f| f.mkdir(dir));
                }
                ok
            }
            "rm" => {
                let mut status = 0;
                let force = args.iter().any(|a| a.starts_with('-') && a.contains('f'));
                for path in args.iter().filter(|a| !a.starts_with('-')) {
                    if self.with_files(|f| f.remove(path)) != Some(true) && !force {
                        err.line(&format!(
                            "rm: can't remove '{path}': No such file or directory"
                        ))
                        .await;
                        status = 1;
                    }
                }
                Flow::Status(status)
            }
            "test" | "[" => {
                let args: Vec<&str> = args
                    .iter()
                    .map(String::as_str)
                    .filter(|a| !(base == "[" && *a == "]"))
                    .collect();
                let truth = match args.as_slice() {
                    ["-d", path] => self.with_files(|f| f.is_dir(path)) == Some(true),
                    ["-f", path] => self.with_files(|f| f.is_file(path)) == Some(true),
                    ["-e", path] => {
                        self.with_files(|f| f.is_file(path) || f.is_dir(path)) == Some(true)
                    }
                    ["-z", text] => text.is_empty(),
                    ["-n", text] => !text.is_empty(),
                    [a, "=", b] | [a, "==", b] => a == b,
                    [a, "!=", b] => a != b,
                    [text] => !text.is_empty(),
                    _ => false,
                };
                Flow::Status(if truth { 0 } else { 1 })
            }
            "tar" => super::tar::run(self, args, input, out, err).await,
            _ => {
                err.line(&format!("sh: {name}: not found")).await;
                Flow::Status(127)
            }
        }
    }

    /// The container's working directory for relative paths.
    pub(crate) fn absolute(&self, dir: Option<&str>, path: &str) -> String {
        match dir {
            Some(dir) if !path.starts_with('/') => normalize(&format!("{dir}/{path}")),
            _ => normalize(path),
        }
    }
}

/// An interactive shell in a terminal: echoes what is typed, runs each
/// line, prompts with `# `. Ends at `exit`, Ctrl-D on an empty line, or
/// when the client closes stdin.
pub(crate) async fn interactive(
    shell: &mut Shell,
    input: &mut Input,
    out: &mut Output,
    err: &mut Output,
) -> i32 {
    lines(shell, input, out, err, true).await
}

/// Runs each line of `input` as it arrives; a `terminal` also echoes what
/// is typed and prompts.
async fn lines(
    shell: &mut Shell,
    input: &mut Input,
    out: &mut Output,
    err: &mut Output,
    terminal: bool,
) -> i32 {
    if terminal {
        out.write(b"# ").await;
    }
    let mut line: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1024];
    loop {
        let n = input.read(&mut buf).await;
        if n == 0 {
            if !terminal && !line.is_empty() {
                let text = String::from_utf8_lossy(&line).into_owned();
                let flow = shell.run_script(&text, &mut Input::Empty, out, err).await;
                return flow.code();
            }
            return shell.last;
        }
        for &byte in &buf[..n] {
            match byte {
                b'\r' | b'\n' => {
                    if terminal {
                        out.write(b"\n").await;
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    let flow = shell.run_script(&text, &mut Input::Empty, out, err).await;
                    if let Flow::Exit(code) = flow {
                        return code;
                    }
                    if terminal {
                        out.write(b"# ").await;
                    }
                }
                0x04 if terminal && line.is_empty() => {
                    out.write(b"exit\n").await;
                    return shell.last;
                }
                0x03 if terminal => {
                    line.clear();
                    out.write(b"^C\n# ").await;
                }
                0x7f | 0x08 if terminal => {
                    if line.pop().is_some() {
                        out.write(b"\x08 \x08").await;
                    }
                }
                byte => {
                    line.push(byte);
                    if terminal {
                        out.write(&[byte]).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell() -> Shell {
        let mut files = Files::default();
        files.write("/etc/hostname", b"web-0\n", false);
        files.write("/etc/config/greeting", b"hello", false);
        Shell {
            files: Arc::new(Mutex::new(files)),
            env: vec![
                ("HOSTNAME".into(), "web-0".into()),
                ("MODE".into(), "demo".into()),
            ],
            last: 0,
        }
    }

    async fn run(shell: &mut Shell, script: &str) -> (String, String, i32) {
        let mut out = Output::Buffer(Vec::new());
        let mut err = Output::Buffer(Vec::new());
        let flow = shell
            .run_script(script, &mut Input::Empty, &mut out, &mut err)
            .await;
        let text = |o: Output| match o {
            Output::Buffer(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        };
        (text(out), text(err), flow.code())
    }

    #[tokio::test]
    async fn scripts_run_as_a_shell_would() {
        let mut sh = shell();
        assert_eq!(
            run(&mut sh, "hostname").await,
            ("web-0\n".into(), "".into(), 0)
        );
        assert_eq!(
            run(&mut sh, "echo \"$MODE\" '$MODE' > /tmp/out; cat /tmp/out")
                .await
                .0,
            "demo $MODE\n"
        );
        assert_eq!(
            run(&mut sh, "cat /etc/config/greeting | cat").await.0,
            "hello"
        );
        assert_eq!(
            run(&mut sh, "false && echo no || echo yes").await.0,
            "yes\n"
        );
        assert_eq!(run(&mut sh, "exit 3").await.2, 3);
        let (_, err, code) = run(&mut sh, "nope").await;
        assert_eq!((err.as_str(), code), ("sh: nope: not found\n", 127));
        assert_eq!(
            run(&mut sh, "test -d /etc && ls /etc").await.0,
            "config\nhostname\n"
        );
        assert_eq!(
            run(&mut sh, "cat /missing 2>/dev/null; echo $?").await.0,
            "1\n"
        );
        assert_eq!(
            run(&mut sh, "for i in $(seq 1 3); do echo $i; done")
                .await
                .0,
            "1\n2\n3\n"
        );
        // Quoted, a substitution stays one word.
        assert_eq!(
            run(&mut sh, "for w in \"$(seq 2)\"; do echo \"[$w]\"; done")
                .await
                .0,
            "[1\n2]\n"
        );
        assert_eq!(
            run(&mut sh, "cat /missing 2>&1").await.0,
            "cat: can't open '/missing': No such file or directory\n"
        );
    }

    #[tokio::test]
    async fn a_shell_reading_a_pipe_runs_each_line() {
        let mut sh = shell();
        let mut input = Input::Bytes(Cursor::new(b"echo a\nexit 2\necho never\n".to_vec()));
        let mut out = Output::Buffer(Vec::new());
        let mut err = Output::Buffer(Vec::new());
        let flow = sh
            .run_command(&["sh".to_owned()], &mut input, &mut out, &mut err)
            .await;
        assert_eq!(flow, Flow::Status(2));
        let Output::Buffer(out) = out else {
            unreachable!()
        };
        assert_eq!(out, b"a\n");
    }

    #[tokio::test]
    async fn a_terminal_echoes_and_prompts() {
        let mut sh = shell();
        let typed = b"echo hi\rexit 4\r".to_vec();
        let mut input = Input::Bytes(Cursor::new(typed));
        let mut out = Output::Buffer(Vec::new());
        let mut err = Output::Buffer(Vec::new());
        let code = interactive(&mut sh, &mut input, &mut out, &mut err).await;
        assert_eq!(code, 4);
        let Output::Buffer(out) = out else {
            unreachable!()
        };
        assert_eq!(String::from_utf8_lossy(&out), "# echo hi\nhi\n# exit 4\n");
    }
}
