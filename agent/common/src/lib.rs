//! Pieces every crate of the agent shares and none owns: config-file plumbing (strict TOML,
//! errors naming the key), RFC 3339 time, numbers in sentences, and how the daemons keep glibc's
//! allocator from sitting on freed memory.

pub mod allocator;
pub mod config_file;
pub mod fmt;
pub mod time;
