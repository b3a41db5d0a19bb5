//! Reading the small files a server follows (certificates, keys, tokens, the web config) as an
//! attacker with write access to a directory cannot turn against it: only a regular file (a
//! FIFO would block the open or the read for ever, `/dev/zero` never ends), at most a size cap,
//! and on a thread of its own under a deadline (a hung network filesystem blocks that thread, not
//! an async worker, and not the process's exit). Symlinks are followed: Kubernetes mounts secrets
//! through them.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a file was not read (without its path: the caller names it, see [`FileError`]).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("is {kind}, not a regular file: not read")]
    NotRegular { kind: &'static str },
    #[error("is {len} bytes, over the limit of {max} bytes: not read")]
    TooLarge { len: u64, max: u64 },
    #[error("grew over the limit of {max} bytes while read")]
    Grew { max: u64 },
    #[error("not read within {0:?} (a hung filesystem?)")]
    TimedOut(Duration),
    #[error("the reading thread ended without an answer")]
    ThreadLost,
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// A reading thread could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start a thread to read it: {0}")]
pub struct SpawnError(#[source] pub std::io::Error);

/// A file that could not be read as text, naming it.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: ReadError,
    },
    #[error("{}: not UTF-8 text: {source}", path.display())]
    NotUtf8 {
        path: PathBuf,
        #[source]
        source: std::string::FromUtf8Error,
    },
}

impl FileError {
    /// The file at fault.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Read { path, .. } | FileError::NotUtf8 { path, .. } => path,
        }
    }

    /// `bytes` as text, or the error naming `path`.
    pub fn text_of(path: &Path, bytes: Vec<u8>) -> Result<String, FileError> {
        String::from_utf8(bytes).map_err(|source| FileError::NotUtf8 {
            path: path.to_path_buf(),
            source,
        })
    }

    /// `source` about `path`.
    pub fn read(path: &Path, source: ReadError) -> FileError {
        FileError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Largest certificate, key, CA, token or web config file read (PEM bundles of a few hundred
/// CAs fit).
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// How long reading one such file may take.
pub const READ_DEADLINE: Duration = Duration::from_secs(5);

/// What kind of thing is at a path that is not a regular file, for the error.
fn kind(ft: &std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// The contents of `path` when it is a regular file of at most `max` bytes; an error saying why
/// not. Opens without blocking (`O_NONBLOCK`: a FIFO with no writer does not hang the open).
/// Blocks as long as the filesystem does: see [`read_regular_within`].
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular {
            kind: kind(&meta.file_type()),
        });
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            len: meta.len(),
            max,
        });
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(ReadError::Grew { max });
    }
    Ok(out)
}

/// [`read_regular`] on a thread of its own, waiting at most `deadline` (the thread is left to
/// finish, or to hang, on its own: it holds nothing of the caller's).
pub fn read_regular_within(
    path: &Path,
    max: u64,
    deadline: Duration,
) -> Result<Vec<u8>, ReadError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned: PathBuf = path.to_path_buf();
    spawn(move || {
        let _ = tx.send(read_regular(&owned, max));
    })?;
    rx.recv_timeout(deadline)
        .unwrap_or(Err(ReadError::TimedOut(deadline)))
}

/// [`read_regular_within`] for async callers: the worker is not blocked while the file is read.
pub async fn read_regular_async(
    path: &Path,
    max: u64,
    deadline: Duration,
) -> Result<Vec<u8>, ReadError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let owned: PathBuf = path.to_path_buf();
    spawn(move || {
        let _ = tx.send(read_regular(&owned, max));
    })?;
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(ReadError::ThreadLost),
        Err(_) => Err(ReadError::TimedOut(deadline)),
    }
}

/// [`read_regular_within`] with the defaults, as UTF-8 text; errors name the file.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    let bytes = read_regular_within(path, MAX_FILE_BYTES, READ_DEADLINE)
        .map_err(|e| FileError::read(path, e))?;
    FileError::text_of(path, bytes)
}

/// Runs `f` on a detached thread of its own (a small stack: it only reads a file).
pub fn spawn(f: impl FnOnce() + Send + 'static) -> Result<(), SpawnError> {
    std::thread::Builder::new()
        .name("file-read".into())
        .stack_size(256 * 1024)
        .spawn(f)
        .map(|_| ())
        .map_err(SpawnError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn only_regular_files_under_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "abc").unwrap();
        assert_eq!(read_regular(&ok, 3).unwrap(), b"abc");
        let e = read_regular(&ok, 2).unwrap_err().to_string();
        assert!(e.contains("over the limit of 2 bytes"), "{e}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        assert_eq!(read_regular(&link, 3).unwrap(), b"abc");
        let e = read_regular(Path::new("/dev/zero"), MAX_FILE_BYTES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a character device"), "{e}");
        let e = read_regular(dir.path(), MAX_FILE_BYTES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a directory"), "{e}");
    }

    #[test]
    fn a_fifo_without_a_writer_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let t0 = Instant::now();
        let e = read_regular_within(&fifo, MAX_FILE_BYTES, Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a FIFO"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        let e = read_text(&fifo).unwrap_err().to_string();
        assert!(e.contains(&fifo.display().to_string()), "{e}");
    }
}
