//! The identity of one version of a file (device, inode, size, mtime): what the checks' caches
//! of parsed files are keyed by, so a file is parsed again only when it changes.

use std::os::unix::fs::MetadataExt;

/// Identity of a file version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

impl FileKey {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}
