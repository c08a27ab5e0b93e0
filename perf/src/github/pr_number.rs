//! Carrying the pull request number from the untrusted pull-request run to the trusted one.
//!
//! A pull request from a fork runs with a read-only token, so its gate cannot comment. It
//! writes `pr-number` next to its results; the results are uploaded as an artifact, and the
//! `workflow_run` workflow (which may write) reads the number back with [`read_pr_number`].
//! Whoever opened the pull request controls that file, so reading is strict: a small regular
//! file holding only decimal digits, nothing else.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::context::GithubContext;
use super::error::GithubError;

/// Name of the file, inside the results directory, that holds the pull request number.
pub const PR_NUMBER_FILE: &str = "pr-number";

/// Parses a pull request number: 1 to 10 ASCII digits, no sign, no leading zero, no spaces;
/// one trailing newline is allowed. `origin` says where the value came from, for the error.
pub fn parse_pr_number(value: &str, origin: &str) -> Result<u64, GithubError> {
    let digits = value.strip_suffix('\n').map_or(value, |v| v.strip_suffix('\r').unwrap_or(v));
    let invalid = || GithubError::InvalidPrNumber { value: value.chars().take(40).collect(), origin: origin.to_owned() };
    let well_formed = (1..=10).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    if !well_formed {
        return Err(invalid());
    }
    digits.parse::<u64>().map_err(|_| invalid())
}

/// Writes `dir/pr-number` when the job runs for a `pull_request` event, atomically; returns
/// the path written, or `None` for other events.
pub fn write_pr_number(dir: &Path, ctx: &GithubContext) -> Result<Option<PathBuf>, GithubError> {
    let (true, Some(pr)) = (ctx.is_pull_request_event(), ctx.pr_number) else {
        return Ok(None);
    };
    let path = dir.join(PR_NUMBER_FILE);
    crate::util::write_atomic(&path, format!("{pr}\n").as_bytes()).map_err(|e| GithubError::io("cannot write", &path, e))?;
    Ok(Some(path))
}

/// Reads `dir/pr-number` as written by [`write_pr_number`], refusing anything else: a
/// symbolic link, a file larger than a number, or content that is not one.
pub fn read_pr_number(dir: &Path) -> Result<u64, GithubError> {
    let path = dir.join(PR_NUMBER_FILE);
    let meta = std::fs::symlink_metadata(&path).map_err(|e| GithubError::io("cannot read", &path, e))?;
    let origin = path.display().to_string();
    if !meta.file_type().is_file() {
        return Err(GithubError::InvalidPrNumber { value: "(not a regular file)".into(), origin });
    }
    let mut text = String::new();
    let file = std::fs::File::open(&path).map_err(|e| GithubError::io("cannot read", &path, e))?;
    // One byte more than the longest valid content, so an oversized file is caught.
    file.take(13)
        .read_to_string(&mut text)
        .map_err(|e| GithubError::InvalidPrNumber { value: format!("(unreadable: {e})"), origin: origin.clone() })?;
    parse_pr_number(&text, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_numbers() {
        assert_eq!(parse_pr_number("42", "t").unwrap(), 42);
        assert_eq!(parse_pr_number("42\n", "t").unwrap(), 42);
        assert_eq!(parse_pr_number("42\r\n", "t").unwrap(), 42);
        assert_eq!(parse_pr_number("9999999999", "t").unwrap(), 9_999_999_999);
    }

    #[test]
    fn rejects_everything_else() {
        for bad in ["", "0", "042", "-1", "+1", " 1", "1 ", "1\n\n", "12345678901", "1e3", "0x1", "４２", "1;rm", "1\n2"] {
            assert!(parse_pr_number(bad, "t").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn read_rejects_symlinks_and_big_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real"), "7\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join(PR_NUMBER_FILE)).unwrap();
        assert!(read_pr_number(dir.path()).is_err());
        std::fs::remove_file(dir.path().join(PR_NUMBER_FILE)).unwrap();
        std::fs::write(dir.path().join(PR_NUMBER_FILE), format!("7{}", " ".repeat(100))).unwrap();
        assert!(read_pr_number(dir.path()).is_err());
        std::fs::write(dir.path().join(PR_NUMBER_FILE), "7\n").unwrap();
        assert_eq!(read_pr_number(dir.path()).unwrap(), 7);
    }
}
