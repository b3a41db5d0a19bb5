//! Bearer token files, shared by the agent's push (which sends the token) and the aggregator
//! (which checks it): one token a line, trimmed. The agent sends the first; the aggregator
//! accepts every one (so a rotation can add the new token before the old one goes). Read as
//! [`crate::files`] reads: a regular file under the size cap, on a thread of its own under a
//! deadline.

use crate::files::FileError;
use std::path::{Path, PathBuf};

/// A token file that cannot be used, naming it.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{}: no token on the first line", path.display())]
    Empty { path: PathBuf },
}

impl TokenError {
    /// The token file at fault.
    pub fn path(&self) -> &Path {
        match self {
            TokenError::File(e) => e.path(),
            TokenError::Empty { path } => path,
        }
    }
}

/// The first line of a token file, trimmed; an error naming the file when it is unreadable or
/// its first line is empty.
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    token_of(path, &crate::files::read_text(path)?)
}

/// Every token of a token file: its first line (which must hold one) and every further
/// non-empty line, trimmed; an error naming the file otherwise.
pub fn read_tokens(path: &Path) -> Result<Vec<String>, TokenError> {
    tokens_of(path, &crate::files::read_text(path)?)
}

/// [`read_token`] for async callers (the agent sends the first token): the worker is not
/// blocked while the file is read.
pub async fn read_token_async(path: &Path) -> Result<String, TokenError> {
    Ok(read_tokens_async(path).await?.swap_remove(0))
}

/// [`read_tokens`] for async callers: the worker is not blocked while the file is read.
pub async fn read_tokens_async(path: &Path) -> Result<Vec<String>, TokenError> {
    let bytes = crate::files::read_regular_async(
        path,
        crate::files::MAX_FILE_BYTES,
        crate::files::READ_DEADLINE,
    )
    .await
    .map_err(|e| FileError::read(path, e))?;
    tokens_of(path, &FileError::text_of(path, bytes)?)
}

fn token_of(path: &Path, text: &str) -> Result<String, TokenError> {
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(token)
}

fn tokens_of(path: &Path, text: &str) -> Result<Vec<String>, TokenError> {
    let mut tokens = vec![token_of(path, text)?];
    for line in text
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if !tokens.iter().any(|t| t == line) {
            tokens.push(line.to_string());
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_trimmed_and_empty_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "  s3cret \nignored\n").unwrap();
        assert_eq!(read_token(&p).unwrap(), "s3cret");
        std::fs::write(&p, "\nx\n").unwrap();
        let e = read_token(&p).unwrap_err().to_string();
        assert!(
            e.contains("no token") && e.contains(&p.display().to_string()),
            "{e}"
        );
        assert!(read_token(&dir.path().join("missing")).is_err());
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = read_token(&fifo).unwrap_err().to_string();
        assert!(e.contains("FIFO") && e.contains("fifo"), "{e}");
        let e = read_token(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("character device"), "{e}");
    }

    #[test]
    fn several_tokens_one_a_line_the_first_sent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(
            &p,
            "new 

  old
new
",
        )
        .unwrap();
        assert_eq!(read_token(&p).unwrap(), "new");
        assert_eq!(read_tokens(&p).unwrap(), vec!["new", "old"]);
        std::fs::write(
            &p, "
old
",
        )
        .unwrap();
        assert!(read_tokens(&p).is_err());
    }
}
