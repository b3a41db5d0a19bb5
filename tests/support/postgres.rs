//! A throwaway PostgreSQL cluster (Debian's server binaries, run as the `postgres` user, which
//! PostgreSQL requires), optionally with `ssl=on` and a certificate made in the test.

use crate::processes::free_port;
use crate::tls::Pki;
use std::path::PathBuf;
use std::process::Command;

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PgCluster {
    /// A cluster without TLS.
    pub fn start() -> PgCluster {
        Self::start_with(None)
    }

    /// A cluster with `ssl=on` serving `pki`'s server certificate (plain connections still
    /// allowed, as `host` lines in pg_hba.conf allow both).
    pub fn start_tls(pki: &Pki) -> PgCluster {
        Self::start_with(Some(pki))
    }

    fn start_with(pki: Option<&Pki>) -> PgCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path().join("bin")).max())
            .filter(|b| b.join("initdb").exists())
            .expect(
                "PostgreSQL server binaries under /usr/lib/postgresql/*/bin (Debian `postgresql`)",
            );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let run = |args: &[&str]| {
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .args(args)
                .output()
                .expect("runuser");
            assert!(
                out.status.success(),
                "{args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let mut opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        if let Some(pki) = pki {
            let (_, cert, key) = pki.write(&dir.path().join("tls"));
            // PostgreSQL refuses a key file others can read.
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ));
        }
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres", dir.path().to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        let data = dir.path().join("data");
        let initdb = bin.join("initdb");
        run(&[
            initdb.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        let pg_ctl = bin.join("pg_ctl");
        run(&[
            pg_ctl.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            dir.path().join("pg.log").to_str().unwrap(),
            "-w",
            "start",
        ]);
        PgCluster { dir, bin, port }
    }

    /// `postgresql://postgres@<host>:<port>/postgres`, then `query` (`?...`) as given.
    pub fn url_at(&self, host: &str, query: &str) -> String {
        format!("postgresql://postgres@{host}:{}/postgres{query}", self.port)
    }

    pub fn url(&self) -> String {
        self.url_at("127.0.0.1", "")
    }

    /// The cluster's data directory (`postmaster.pid` names the server's pid).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args([
                "-D",
                self.dir.path().join("data").to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}
