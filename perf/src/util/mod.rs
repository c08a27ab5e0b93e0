//! Small helpers every layer may use, each written once: writing a file so that it is never
//! seen half-written, asking the kernel for a free port, running `git`, taking a median, and
//! the one sink for progress lines ([`Notes`]), how busy the machine was with other work
//! ([`machine`]), and wake-ups finer than tokio's timer ([`pacer`]).
//!
//! This module is the bottom of the crate: it uses nothing else from it.

pub mod machine;
pub(crate) mod pacer;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes `bytes` to `path` atomically (a temporary file in the same folder, fsync, rename),
/// creating the folder if needed. Readers see the old file or the new one, never a part.
///
/// The file gets the mode a plain `File::create` would (0666 less the umask, usually 0644),
/// not the temporary file's private 0600, so CI caches, web servers and colleagues can read
/// results. Every file the gate writes goes through here.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".perf-").suffix(".tmp").tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o666 & !umask()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The process's file mode creation mask, read from `/proc/self/status` (Linux ≥ 4.7) so that
/// nothing has to set it to read it; 022 when it cannot be read.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Umask:")).and_then(|v| u32::from_str_radix(v.trim(), 8).ok()))
        .unwrap_or(0o022)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it).
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr()).map(|a| a.port())
}

/// Runs `git -C dir args…`; its trimmed standard output on success, its trimmed standard
/// error (or why git could not run) otherwise.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `path` relative to the current directory when it is inside it, for messages.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    match cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()) {
        Some(rel) => rel.display().to_string(),
        None => path.display().to_string(),
    }
}

/// How reports and the pull-request comment name a file: relative to the root of the git
/// repository it is in, so that a runner's `/home/runner/work/…` never shows; outside a
/// repository, as [`display_path`] does.
pub fn report_path(path: &Path) -> String {
    let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let dir = if abs.is_dir() { abs.as_path() } else { abs.parent().unwrap_or(Path::new("/")) };
    match git(dir, &["rev-parse", "--show-toplevel"]) {
        Ok(top) => match abs.strip_prefix(&top) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => display_path(path),
        },
        Err(_) => display_path(path),
    }
}

/// `text` without terminal escape sequences: colours and styles (CSI, `ESC [ 2 m`), window
/// titles and links (OSC, `ESC ] 8 ; ; URL BEL`), and the other control characters but tab and
/// newline (so a carriage return goes too). For the ends of services' logs the gate prints: an
/// app that colours its log into a file would show as `[2m2026-…[0m [32m INFO[0m` otherwise.
///
/// The parsing is vte's (Alacritty's terminal parser, in the dependency tree already through
/// quick-junit's strip-ansi-escapes). strip-ansi-escapes itself is not used: it drops tabs,
/// with which Java and Go indent their stack traces. Each line is parsed on its own, so a
/// sequence cut short (a log read from the middle, a stray `ESC ]`) can cost the rest of its
/// line, never the lines after it.
pub fn strip_ansi(text: &str) -> String {
    /// Keeps what a terminal would print, and tabs.
    struct Printed(String);
    impl vte::Perform for Printed {
        fn print(&mut self, c: char) {
            self.0.push(c);
        }
        fn execute(&mut self, byte: u8) {
            if byte == b'\t' {
                self.0.push('\t');
            }
        }
    }
    let mut out = Printed(String::with_capacity(text.len()));
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.0.push('\n');
        }
        vte::Parser::new().advance(&mut out, line.as_bytes());
    }
    out.0
}

/// The median (the mean of the two middle values for an even count); `None` when empty.
/// NaNs sort last, by `f64::total_cmp`.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Where a run's progress lines go ("starting the environment", "regression on …; running the
/// suite once more"): the one sink the front end provides. Standard error by default; a front
/// end may collect or silence them. (The engine's per-second progress is its own
/// `engine::ProgressMode`.)
#[derive(Clone)]
pub struct Notes(std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl Notes {
    /// Lines to standard error.
    pub fn stderr() -> Notes {
        Notes(std::sync::Arc::new(|line: &str| eprintln!("{line}")))
    }

    /// Lines to `sink`.
    pub fn to(sink: impl Fn(&str) + Send + Sync + 'static) -> Notes {
        Notes(std::sync::Arc::new(sink))
    }

    pub fn say(&self, line: impl AsRef<str>) {
        (self.0)(line.as_ref())
    }
}

impl Default for Notes {
    fn default() -> Notes {
        Notes::stderr()
    }
}

impl std::fmt::Debug for Notes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notes")
    }
}

/// An SQL statement's text with its literals masked: `'text'` becomes `'?'` and a number
/// that is not part of a name or a `$N` parameter becomes `?`. Statement statistics keep
/// their text this way, so no value an app wrote into a statement is kept.
pub fn mask_sql_literals(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        if c == '\'' {
            // A string literal, '' inside it being a quote.
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                    }
                    Some('\'') | None => break,
                    Some(_) => {}
                }
            }
            out.push_str("'?'");
            prev = Some('\'');
        } else if c.is_ascii_digit() && !prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '$' || p == '.') {
            while chars.peek().is_some_and(|d| d.is_ascii_digit() || *d == '.') {
                chars.next();
            }
            out.push('?');
            prev = Some('?');
        } else {
            out.push(c);
            prev = Some(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sql_literals_are_masked_and_names_and_parameters_kept() {
        assert_eq!(
            super::mask_sql_literals("SELECT a1, $2 FROM t2 WHERE s = 'it''s user7@x.test' AND n + 0 = 42.5 LIMIT 10"),
            "SELECT a1, $2 FROM t2 WHERE s = '?' AND n + ? = ? LIMIT ?"
        );
        assert_eq!(super::mask_sql_literals("x = 'unterminated"), "x = '?'");
    }

    use super::*;

    #[test]
    fn terminal_escapes_are_stripped_and_tabs_and_lines_kept() {
        // tracing-subscriber's coloured line, as the reference app wrote it into a file.
        let coloured = "\x1b[2m2026-11-02T10:05:51.123Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mrefapp\x1b[0m\x1b[2m:\x1b[0m database ready \
                        \x1b[3mseeded\x1b[0m\x1b[2m=\x1b[0mtrue";
        assert_eq!(strip_ansi(coloured), "2026-11-02T10:05:51.123Z  INFO refapp: database ready seeded=true");
        // A Java stack trace keeps its tabs; CRLF line ends lose the CR; blank lines stay.
        assert_eq!(
            strip_ansi("Exception in thread \"main\"\r\n\tat App.main(App.java:3)\n\nend"),
            "Exception in thread \"main\"\n\tat App.main(App.java:3)\n\nend"
        );
        // An OSC 8 link (BEL- and ST-terminated) keeps its text, a window title goes entirely.
        assert_eq!(strip_ansi("see \x1b]8;;https://x.test/a\x07the docs\x1b]8;;\x1b\\ now"), "see the docs now");
        assert_eq!(strip_ansi("\x1b]0;my title\x07ready"), "ready");
        // Cursor moves and erasing, 256 colours and true colour.
        assert_eq!(strip_ansi("\x1b[2K\x1b[1G\x1b[38;5;208mwarm\x1b[38;2;1;2;3m up\x1b[m"), "warm up");
        // A sequence cut short costs the rest of its line only; text without escapes is as it was.
        assert_eq!(strip_ansi("cut \x1b]8;;http://x\nnext line"), "cut \nnext line");
        assert_eq!(strip_ansi("plain é ✓ text\n"), "plain é ✓ text\n");
    }

    #[test]
    fn reports_name_files_from_the_repository_root_wherever_the_gate_runs() {
        let repo = tempfile::tempdir().unwrap();
        git(repo.path(), &["init", "-q"]).unwrap();
        let file = repo.path().join("service/results/baseline/local-2cpu/baseline.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "{}").unwrap();
        // The current directory (the test runner's) is not the repository.
        assert_eq!(report_path(&file), "service/results/baseline/local-2cpu/baseline.json");
        assert_eq!(report_path(&repo.path().join("service/results/baseline")), "service/results/baseline");
        // Outside any repository: the path as given.
        let loose = tempfile::tempdir().unwrap();
        let outside = loose.path().join("b.json");
        std::fs::write(&outside, "{}").unwrap();
        assert_eq!(report_path(&outside), outside.display().to_string());
    }

    #[test]
    fn notes_go_to_the_sink_the_front_end_gives() {
        let lines = std::sync::Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
        let notes = {
            let lines = lines.clone();
            Notes::to(move |l| lines.lock().push(l.to_string()))
        };
        let copy = notes.clone();
        notes.say("starting the environment");
        copy.say(format!("  app: {}", "http://127.0.0.1:1"));
        assert_eq!(*lines.lock(), vec!["starting the environment".to_string(), "  app: http://127.0.0.1:1".to_string()]);
    }
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_writes_replace_whole_files_with_a_readable_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/result.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask(), "the mode a plain write gives, not the temp file's 0600");
        assert!(mode & 0o044 != 0 || umask() & 0o044 == 0o044, "group/others can read under the usual umask");
        let leftovers: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(leftovers, vec!["result.json".to_string()], "no temporary file left behind");
    }

    #[test]
    fn atomic_write_into_a_file_fails_and_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"keep").unwrap();
        assert!(write_atomic(&file.join("x.json"), b"x").is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    }

    #[test]
    fn umask_is_read_from_proc() {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = text.lines().find(|l| l.starts_with("Umask:")).expect("Linux ≥ 4.7 reports Umask");
        assert_eq!(umask(), u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap());
    }

    #[test]
    fn medians_of_odd_even_and_empty() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn free_ports_can_be_bound() {
        let p = free_port().unwrap();
        std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    }

    #[test]
    fn git_reports_its_error_text() {
        let dir = tempfile::tempdir().unwrap();
        let err = git(dir.path(), &["rev-parse", "HEAD"]).unwrap_err();
        assert!(err.contains("not a git repository"), "{err}");
    }
}
