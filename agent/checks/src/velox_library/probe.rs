//! `load_probe`: a real `dlopen` of each configured library in a forked child under a deadline,
//! so a crash in its initialisers (SIGILL on a CPU without AVX2) kills only the child.

use super::facts::{Facts, ProbeResult};
use crate::host::Host;
use std::io::Read;
use std::path::Path;

/// Deadline of one dlopen probe.
const PROBE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether this build can `dlopen` at all: the static musl binary has no dynamic loader, so
/// its `dlopen` always fails, which says nothing about the library.
pub(super) const CAN_DLOPEN: bool = !cfg!(target_env = "musl");

/// Why a probe was not run in a build without `dlopen`.
pub(super) const NO_DLOPEN: &str =
    "this build cannot dlopen; use the glibc build or run without load_probe";

/// Probes every configured library file (jar entries are never extracted).
pub(super) fn probe_all(host: &Host, facts: &Facts, can_dlopen: bool) -> Vec<ProbeResult> {
    let rooted = host.root() != Path::new("/");
    facts
        .libraries
        .iter()
        .filter(|l| l.found && l.error.is_none() && !l.path.contains('!'))
        .map(|l| {
            if !can_dlopen {
                ProbeResult {
                    path: l.path.clone(),
                    result: "skipped".into(),
                    detail: Some(NO_DLOPEN.into()),
                }
            } else if rooted {
                ProbeResult {
                    path: l.path.clone(),
                    result: "skipped".into(),
                    detail: Some(format!(
                        "dlopen cannot be rooted at {}",
                        host.root().display()
                    )),
                }
            } else {
                probe(&l.path)
            }
        })
        .collect()
}

/// dlopens `path` in a forked child, which reports over a pipe and exits; a crash in the
/// library's initialisers (SIGILL on a CPU without AVX2) kills only the child.
fn probe(path: &str) -> ProbeResult {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork, pipe};
    let result = |r: &str, d: Option<String>| ProbeResult {
        path: path.to_string(),
        result: r.to_string(),
        detail: d,
    };
    let Ok(cpath) = std::ffi::CString::new(path) else {
        return result("failed", Some("path holds a NUL byte".into()));
    };
    let Ok((rd, wr)) = pipe() else {
        return result("skipped", Some("pipe failed".into()));
    };
    // SAFETY: the child only calls dlopen/dlerror/write/_exit. dlopen after fork in a threaded
    // process can deadlock on a lock held by another thread at fork time; the deadline and
    // SIGKILL below bound that, and the agent itself is never at risk.
    match unsafe { fork() } {
        Err(e) => result("skipped", Some(format!("fork failed: {e}"))),
        Ok(ForkResult::Child) => {
            drop(rd);
            // SAFETY: plain libc calls in the child; it never returns to Rust code.
            unsafe {
                let h = libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
                let (msg, code) = if h.is_null() {
                    let e = libc::dlerror();
                    let s = if e.is_null() {
                        &b"dlopen failed"[..]
                    } else {
                        std::ffi::CStr::from_ptr(e).to_bytes()
                    };
                    (s, 1)
                } else {
                    (&b""[..], 0)
                };
                use std::os::fd::AsRawFd;
                libc::write(wr.as_raw_fd(), msg.as_ptr().cast(), msg.len().min(4096));
                libc::_exit(code);
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(wr);
            let t0 = std::time::Instant::now();
            let status = loop {
                match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) if t0.elapsed() < PROBE_DEADLINE => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Ok(WaitStatus::StillAlive) => {
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                        let _ = waitpid(child, None);
                        break None;
                    }
                    Ok(s) => break Some(s),
                    Err(_) => break None,
                }
            };
            let mut msg = String::new();
            let _ = std::fs::File::from(rd).take(4096).read_to_string(&mut msg);
            match status {
                Some(WaitStatus::Exited(_, 0)) => result("loaded", None),
                Some(WaitStatus::Exited(_, _)) => result("failed", Some(msg)),
                Some(WaitStatus::Signaled(_, sig, _)) => {
                    result("crashed", Some(format!("child killed by {sig}")))
                }
                _ => result(
                    "timed_out",
                    Some(format!("no answer within {}s", PROBE_DEADLINE.as_secs())),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velox_library::facts::LibraryFacts;

    #[test]
    fn a_build_without_dlopen_skips_with_the_reason() {
        let facts = Facts {
            libraries: vec![LibraryFacts {
                path: "/opt/gluten/lib/libvelox.so".into(),
                found: true,
                role: "configured".into(),
                ..LibraryFacts::default()
            }],
            ..Facts::default()
        };
        let r = probe_all(&Host::new("/"), &facts, false);
        assert_eq!(r[0].result, "skipped");
        assert_eq!(r[0].detail.as_deref(), Some(NO_DLOPEN));
        let v = crate::velox_library::evaluate(
            &Facts {
                load_probe: r,
                ..facts
            },
            &Default::default(),
        );
        assert_eq!(v.findings[0].status, proto::Status::Unknown);
        assert!(
            v.findings[0].message.ends_with(NO_DLOPEN),
            "{}",
            v.findings[0].message
        );
    }
}
