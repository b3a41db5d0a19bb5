//! A raw FUSE filesystem (no libfuse) whose `statfs` never answers: a hung NFS or FUSE mount.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A FUSE filesystem served by a thread of the test process that answers `INIT`, `GETATTR`
/// (the root is an empty 0755 dir), `LOOKUP` (ENOENT) and nothing else promptly, and never
/// answers `STATFS`: `stat` of the mount point works, `statvfs` blocks in the kernel, like an NFS
/// or FUSE mount whose server stopped answering. Mounted with the raw `mount(2)` on an fd of
/// `/dev/fuse` (no libfuse); needs root. Drop unmounts it (lazily) and closes the fd, which aborts
/// the connection: every request still waiting (statfs calls of the agent, even of a SIGKILLed
/// one, which waits uninterruptibly once the server has read its request) fails with ENOTCONN.
pub struct HungFuse {
    pub mount_point: PathBuf,
    /// STATFS requests received (and left unanswered) so far.
    pub statfs_seen: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

mod fuse_abi {
    pub const LOOKUP: u32 = 1;
    pub const FORGET: u32 = 2;
    pub const GETATTR: u32 = 3;
    pub const STATFS: u32 = 17;
    pub const INIT: u32 = 26;
    pub const INTERRUPT: u32 = 36;
    pub const DESTROY: u32 = 38;
    pub const BATCH_FORGET: u32 = 42;
    /// `struct fuse_in_header`.
    pub const IN_HEADER: usize = 40;
}

impl HungFuse {
    pub fn mount(mount_point: &Path) -> HungFuse {
        use std::ffi::CString;
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::sync::atomic::{AtomicBool, AtomicU64};
        std::fs::create_dir_all(mount_point).unwrap();
        // O_CLOEXEC: the agent (and any other child of the test process) must not inherit it,
        // or closing ours would not abort the connection.
        let raw = unsafe {
            libc::open(
                c"/dev/fuse".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        assert!(
            raw >= 0,
            "open /dev/fuse: {} (FUSE is needed: the fuse module and /dev/fuse)",
            std::io::Error::last_os_error()
        );
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let target = CString::new(mount_point.as_os_str().as_encoded_bytes()).unwrap();
        let data = CString::new(format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            fd.as_raw_fd()
        ))
        .unwrap();
        let rc = unsafe {
            libc::mount(
                c"gluten-hung".as_ptr(),
                target.as_ptr(),
                c"fuse".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount fuse on {}: {}",
            mount_point.display(),
            std::io::Error::last_os_error()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let statfs_seen = Arc::new(AtomicU64::new(0));
        let (s, seen) = (stop.clone(), statfs_seen.clone());
        let server = std::thread::Builder::new()
            .name("hung-fuse".into())
            .spawn(move || Self::serve(fd, &s, &seen))
            .unwrap();
        HungFuse {
            mount_point: mount_point.to_path_buf(),
            statfs_seen,
            stop,
            server: Some(server),
        }
    }

    fn serve(
        fd: std::os::fd::OwnedFd,
        stop: &std::sync::atomic::AtomicBool,
        statfs_seen: &std::sync::atomic::AtomicU64,
    ) {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::Ordering;
        let raw = fd.as_raw_fd();
        let mut buf = vec![0u8; 256 * 1024];
        let reply = |unique: u64, error: i32, body: &[u8]| {
            let mut out = Vec::with_capacity(16 + body.len());
            out.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
            out.extend_from_slice(&error.to_ne_bytes());
            out.extend_from_slice(&unique.to_ne_bytes());
            out.extend_from_slice(body);
            unsafe { libc::write(raw, out.as_ptr().cast(), out.len()) };
        };
        while !stop.load(Ordering::Acquire) {
            let mut pfd = libc::pollfd {
                fd: raw,
                events: libc::POLLIN,
                revents: 0,
            };
            if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                continue;
            }
            let n = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
            if n < fuse_abi::IN_HEADER as isize {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ENOENT) => continue,
                    _ => return, // ENODEV: unmounted
                }
            }
            let u32_at = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().unwrap());
            let opcode = u32_at(4);
            let unique = u64::from_ne_bytes(buf[8..16].try_into().unwrap());
            let nodeid = u64::from_ne_bytes(buf[16..24].try_into().unwrap());
            match opcode {
                fuse_abi::INIT => {
                    let major = u32_at(fuse_abi::IN_HEADER);
                    let mut out = [0u8; 64]; // struct fuse_init_out (7.23+)
                    out[0..4].copy_from_slice(&7u32.to_ne_bytes());
                    out[4..8].copy_from_slice(&31u32.to_ne_bytes());
                    out[16..18].copy_from_slice(&1u16.to_ne_bytes()); // max_background
                    out[18..20].copy_from_slice(&1u16.to_ne_bytes()); // congestion_threshold
                    out[20..24].copy_from_slice(&4096u32.to_ne_bytes()); // max_write
                    out[24..28].copy_from_slice(&1u32.to_ne_bytes()); // time_gran
                    if major != 7 {
                        reply(unique, -libc::EPROTO, &[]);
                    } else {
                        reply(unique, 0, &out);
                    }
                }
                fuse_abi::GETATTR if nodeid == 1 => {
                    let mut out = [0u8; 104]; // struct fuse_attr_out
                    out[16..24].copy_from_slice(&1u64.to_ne_bytes()); // ino
                    out[76..80].copy_from_slice(&0o040755u32.to_ne_bytes()); // mode
                    out[80..84].copy_from_slice(&2u32.to_ne_bytes()); // nlink
                    out[96..100].copy_from_slice(&4096u32.to_ne_bytes()); // blksize
                    reply(unique, 0, &out);
                }
                fuse_abi::LOOKUP => reply(unique, -libc::ENOENT, &[]),
                fuse_abi::STATFS => {
                    statfs_seen.fetch_add(1, Ordering::AcqRel);
                }
                fuse_abi::FORGET
                | fuse_abi::BATCH_FORGET
                | fuse_abi::INTERRUPT
                | fuse_abi::DESTROY => {}
                _ => reply(unique, -libc::ENOSYS, &[]),
            }
        }
        // Dropping `fd` (the last one) aborts the connection.
    }
}

impl Drop for HungFuse {
    fn drop(&mut self) {
        use std::ffi::CString;
        let target = CString::new(self.mount_point.as_os_str().as_encoded_bytes()).unwrap();
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
    }
}
