//! Pure parsers of the kernel text files more than one check reads: `/proc/meminfo` and a NUMA
//! node's `meminfo`, `/proc/<pid>/mountinfo`, cpulists, one-number files and flat `key value`
//! files; plus the NUMA node directories of sysfs. Each parser takes the text and returns a
//! `ParseError` without the path (the `Host` read adds it).

use crate::error::{CheckError, ParseError, excerpt};
use crate::host::Host;
use serde::Serialize;

// ---------------------------------------------------------------------------------------------
// meminfo

/// Parses `/proc/meminfo` or a node's `meminfo` into `(key, value)` pairs: values with a `kB` unit
/// become bytes, bare values (page counts) stay as they are. A node file's `Node <n> ` prefix is
/// dropped, so `Node 0 HugePages_Total:     0` gives `("HugePages_Total", 0)`.
pub fn parse_meminfo(text: &str) -> Result<Vec<(String, u64)>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (key, rest) = line
            .split_once(':')
            .ok_or_else(|| ParseError::at_line(i + 1, format!("no ':' in {}", excerpt(line))))?;
        let key =
            strip_node_prefix(key.trim()).map_err(|reason| ParseError::at_line(i + 1, reason))?;
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ParseError::at_line(
                i + 1,
                format!("bad key {}", excerpt(key)),
            ));
        }
        let mut words = rest.split_whitespace();
        let value: u64 = words
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ParseError::at_line(i + 1, format!("{key}: value is not a number")))?;
        let value = match (words.next(), words.next()) {
            (Some("kB"), None) => value.checked_mul(1024).ok_or_else(|| {
                ParseError::at_line(i + 1, format!("{key}: {value} kB overflows"))
            })?,
            (None, _) => value,
            (Some("kB"), Some(extra)) | (Some(extra), _) => {
                return Err(ParseError::at_line(
                    i + 1,
                    format!(
                        "{key}: unexpected {} after the value in {}",
                        excerpt(extra),
                        excerpt(line)
                    ),
                ));
            }
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// `Node 3 MemFree` -> `MemFree`; a key without the prefix is returned as it is.
fn strip_node_prefix(key: &str) -> Result<&str, ParseError> {
    let Some(rest) = key.strip_prefix("Node ") else {
        return Ok(key);
    };
    let rest = rest.trim_start();
    let (num, name) = rest
        .split_once(char::is_whitespace)
        .ok_or_else(|| ParseError::new(format!("no key after {}", excerpt(key))))?;
    num.parse::<u32>().map_err(|_| {
        ParseError::new(format!(
            "bad node number {} in {}",
            excerpt(num),
            excerpt(key)
        ))
    })?;
    Ok(name.trim())
}

/// The value of `key` among parsed `(key, value)` pairs (meminfo, flat keyed files); the first
/// one when a key repeats.
pub fn field(fields: &[(String, u64)], key: &str) -> Option<u64> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

// ---------------------------------------------------------------------------------------------
// One-number and flat `key value` files

/// Parses a file holding one unsigned number (`nr_hugepages`, `numa_balancing`,
/// `memory.current`), newline or not.
pub fn parse_count(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    t.parse()
        .map_err(|_| ParseError::new(format!("expected an unsigned number, got {}", excerpt(t))))
}

/// Flat `key value` files: `/proc/vmstat`, cgroup `memory.events`, `memory.stat`, v1
/// `memory.oom_control`.
pub fn parse_flat_keyed(text: &str) -> Result<Vec<(String, u64)>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let Some(key) = words.next() else { continue };
        let value = words
            .next()
            .ok_or_else(|| ParseError::at_line(i + 1, format!("{key}: no value")))?;
        let value: u64 = value.parse().map_err(|_| {
            ParseError::at_line(i + 1, format!("{key}: {} is not a number", excerpt(value)))
        })?;
        if let Some(extra) = words.next() {
            return Err(ParseError::at_line(
                i + 1,
                format!("{key}: unexpected {} after the value", excerpt(extra)),
            ));
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// cpulist

/// A set of CPU (or node) numbers in the kernel's list format (`0-3,8-11`), kept as sorted,
/// merged inclusive ranges so that `0-4294967295` costs two numbers, not four billion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuList {
    ranges: Vec<(u32, u32)>,
}

impl CpuList {
    pub fn from_ranges(mut ranges: Vec<(u32, u32)>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        CpuList { ranges: merged }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many numbers the list holds.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| u64::from(b - a) + 1).sum()
    }

    pub fn contains(&self, n: u32) -> bool {
        self.ranges.iter().any(|(a, b)| *a <= n && n <= *b)
    }

    pub fn intersects(&self, other: &CpuList) -> bool {
        self.ranges
            .iter()
            .any(|(a, b)| other.ranges.iter().any(|(c, d)| a.max(c) <= b.min(d)))
    }
}

impl std::fmt::Display for CpuList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for CpuList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses a kernel cpulist (`0-3,8-11`, `5`, or empty for a CPU-less node), newline or not.
pub fn parse_cpulist(text: &str) -> Result<CpuList, ParseError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(CpuList::default());
    }
    let num = |s: &str| {
        s.trim().parse::<u32>().map_err(|_| {
            ParseError::new(format!(
                "bad number {} in cpulist {}",
                excerpt(s),
                excerpt(t)
            ))
        })
    };
    let mut ranges = Vec::new();
    for item in t.split(',') {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(item)?;
                (n, n)
            }
        };
        if a > b {
            return Err(ParseError::new(format!(
                "descending range {item:?} in cpulist {t:?}"
            )));
        }
        ranges.push((a, b));
    }
    Ok(CpuList::from_ranges(ranges))
}

// ---------------------------------------------------------------------------------------------
// mountinfo

/// One line of `/proc/<pid>/mountinfo` (proc(5)), with octal escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub major: u32,
    pub minor: u32,
    /// The root of the mount within its filesystem (`/` unless a bind mount of a subdir; not `/`
    /// for a cgroup mount seen inside a cgroup namespace).
    pub root: String,
    pub mount_point: String,
    pub mount_options: Vec<String>,
    pub fs_type: String,
    pub source: String,
    pub super_options: Vec<String>,
}

impl MountInfo {
    pub fn read_only(&self) -> bool {
        self.mount_options.iter().any(|o| o == "ro") || self.super_options.iter().any(|o| o == "ro")
    }

    pub fn noexec(&self) -> bool {
        self.mount_options.iter().any(|o| o == "noexec")
    }
}

/// Decodes the kernel's `\ooo` octal escapes (space `\040`, tab `\011`, newline `\012`,
/// backslash `\134`); anything else is kept as written.
pub fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/<pid>/mountinfo`. Fields are separated by runs of whitespace (some kernels
/// and captures show a double space); the optional fields end at a lone `-`.
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountInfo>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| ParseError::at_line(i + 1, why);
        if f.len() < 7 {
            return Err(bad("fewer than 7 fields"));
        }
        let (major, minor) = f[2]
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(|| bad(&format!("device {:?} is not major:minor", f[2])))?;
        let sep = f[6..]
            .iter()
            .position(|x| *x == "-")
            .map(|p| p + 6)
            .ok_or_else(|| bad("no ' - ' separator before the filesystem type"))?;
        let fs_type = f
            .get(sep + 1)
            .ok_or_else(|| bad("no filesystem type after ' - '"))?;
        let split_opts = |s: Option<&&str>| -> Vec<String> {
            s.map(|s| {
                s.split(',')
                    .filter(|o| !o.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
        };
        out.push(MountInfo {
            major,
            minor,
            root: unescape_octal(f[3]),
            mount_point: unescape_octal(f[4]),
            mount_options: split_opts(f.get(5)),
            fs_type: unescape_octal(fs_type),
            source: f
                .get(sep + 2)
                .map(|s| unescape_octal(s))
                .unwrap_or_default(),
            super_options: split_opts(f.get(sep + 3)),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// NUMA node dirs

/// The NUMA nodes; each may hold `cpulist`, `meminfo`, `distance` and
/// `hugepages/hugepages-<size>kB`.
pub const NODES_DIR: &str = "/sys/devices/system/node";

/// The NUMA node ids present under [`NODES_DIR`] (`node<N>` dirs), ascending; none when the dir
/// is missing.
pub fn node_ids(host: &Host) -> Result<Vec<u32>, CheckError> {
    let mut ids: Vec<u32> = host
        .list_dir(NODES_DIR)?
        .iter()
        .filter_map(|n| n.strip_prefix("node")?.parse().ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

// ---------------------------------------------------------------------------------------------
// meminfo huge page lines (hugepages reports them; memory counts the pools from them)

/// The huge page lines of `/proc/meminfo`; a line the kernel did not print is `None`.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MeminfoHugepages {
    pub hugepages_total: Option<u64>,
    pub hugepages_free: Option<u64>,
    pub hugepages_rsvd: Option<u64>,
    pub hugepages_surp: Option<u64>,
    /// The default huge page size.
    pub hugepagesize_bytes: Option<u64>,
    /// Memory in hugetlb pages of every size (Linux 4.16+); the memory check's pool bytes.
    pub hugetlb_bytes: Option<u64>,
    /// Anonymous memory mapped with transparent huge pages.
    pub anon_huge_pages_bytes: Option<u64>,
}

/// The huge page lines of parsed meminfo fields.
pub fn meminfo_hugepages(fields: &[(String, u64)]) -> MeminfoHugepages {
    let get = |k: &str| field(fields, k);
    MeminfoHugepages {
        hugepages_total: get("HugePages_Total"),
        hugepages_free: get("HugePages_Free"),
        hugepages_rsvd: get("HugePages_Rsvd"),
        hugepages_surp: get("HugePages_Surp"),
        hugepagesize_bytes: get("Hugepagesize"),
        hugetlb_bytes: get("Hugetlb"),
        anon_huge_pages_bytes: get("AnonHugePages"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // --- meminfo ---

    #[test]
    fn meminfo_tolerates_no_trailing_newline_and_huge_vmalloc() {
        let f = parse_meminfo("VmallocTotal:   34359738367 kB").unwrap();
        assert_eq!(field(&f, "VmallocTotal"), Some(34359738367 * 1024));
    }

    #[test]
    fn node_meminfo_lines_carry_a_node_prefix() {
        let text = "Node 0 MemTotal:       134182340 kB\nNode 0 HugePages_Total:     0\n\
Node 0 HugePages_Free:      0\nNode 0 HugePages_Surp:      0\n";
        let f = parse_meminfo(text).unwrap();
        assert_eq!(f[0], ("MemTotal".to_string(), 134182340 * 1024));
        assert_eq!(f[1], ("HugePages_Total".to_string(), 0));
        assert!(parse_meminfo("Node x MemTotal: 1 kB").is_err());
    }

    #[test]
    fn malformed_meminfo_names_the_line() {
        let e = parse_meminfo("MemTotal: 1 kB\nHugePages_Total: lots\n").unwrap_err();
        assert!(e.0.starts_with("line 2:"), "{e}");
        assert!(parse_meminfo("MemTotal 1 kB").is_err());
        assert!(parse_meminfo("MemTotal: 1 MB").is_err());
        assert!(parse_meminfo("MemTotal: 18446744073709551615 kB").is_err());
    }

    #[test]
    fn meminfo_errors_name_the_line() {
        let e = parse_meminfo("MemTotal: 1 kB\nMemFree 2 kB\n").unwrap_err();
        assert!(e.0.starts_with("line 2: no ':'"), "{e}");
        let e = parse_meminfo("MemTotal: lots kB\n").unwrap_err();
        assert_eq!(e.0, "line 1: MemTotal: value is not a number");
        let e = parse_meminfo("MemTotal: 1 MB\n").unwrap_err();
        assert!(e.0.contains("unexpected \"MB\""), "{e}");
        let e = parse_meminfo("MemTotal: 1 kB x\n").unwrap_err();
        assert!(e.0.contains("unexpected \"x\""), "{e}");
        let e = parse_meminfo("MemTotal: 18446744073709551615 kB\n").unwrap_err();
        assert!(e.0.contains("overflows"), "{e}");
    }

    // --- one-number and flat keyed files ---

    #[test]
    fn counts_parse_with_or_without_a_trailing_newline() {
        assert_eq!(parse_count("1024\n"), Ok(1024));
        assert_eq!(parse_count("0"), Ok(0));
        assert!(parse_count("-1\n").is_err());
        assert!(parse_count("\n").is_err());
    }

    #[test]
    fn memory_events_v2() {
        let ev = parse_flat_keyed("low 0\nhigh 12\nmax 40\noom 2\noom_kill 1\noom_group_kill 0\n")
            .unwrap();
        assert_eq!(field(&ev, "max"), Some(40));
        assert_eq!(field(&ev, "oom_kill"), Some(1));
        assert!(parse_flat_keyed("oom_kill\n").is_err());
        assert!(parse_flat_keyed("oom_kill 1 2\n").is_err());
    }

    #[test]
    fn v1_oom_control_has_a_kill_counter_since_4_13() {
        let oc = parse_flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n").unwrap();
        assert_eq!(field(&oc, "oom_kill"), Some(7));
    }

    // --- cpulist ---

    #[test]
    fn cpulist_with_two_ranges() {
        let c = parse_cpulist("0-3,8-11\n").unwrap();
        assert_eq!(c.count(), 8);
        assert_eq!(c.to_string(), "0-3,8-11");
        assert!(c.contains(9) && !c.contains(5));
    }

    #[test]
    fn empty_cpulist_is_a_cpuless_node() {
        assert!(parse_cpulist("\n").unwrap().is_empty());
        assert!(parse_cpulist("").unwrap().is_empty());
    }

    #[test]
    fn cpulist_with_a_single_cpu_and_no_newline() {
        let c = parse_cpulist("5").unwrap();
        assert_eq!((c.count(), c.to_string()), (1, "5".to_string()));
    }

    #[test]
    fn cpulist_ranges_merge_and_huge_ranges_stay_cheap() {
        assert_eq!(parse_cpulist("8-11,0-3,4-7").unwrap().to_string(), "0-11");
        let all = parse_cpulist("0-4294967295").unwrap();
        assert_eq!(all.count(), 1 << 32);
    }

    #[test]
    fn malformed_cpulists_are_errors() {
        for bad in ["3-1", "a", "1,,2", "1-", "-1", "0-3 8"] {
            assert!(parse_cpulist(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn intersections() {
        let a = parse_cpulist("0-15").unwrap();
        assert!(a.intersects(&parse_cpulist("15-31").unwrap()));
        assert!(!a.intersects(&parse_cpulist("16-31").unwrap()));
        assert!(!a.intersects(&CpuList::default()));
    }

    // --- mountinfo ---

    // Real kernel text: procfs-upstream's proc/26231/mountinfo (first line has a double space).
    const PROCFS_MOUNTINFO: &str = "1 1 0:5 /  /root rw,nosuid shared:8 - rootfs rootfs rw\n\
        21 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro,data=ordered\n\
        1128 67 253:0 /var/lib/containers/storage/overlay /var/lib/containers/storage/overlay rw,relatime - xfs /dev/mapper/rhel-root rw,seclabel,attr2,inode64,logbufs=8,logbsize=32k,noquota\n";

    #[test]
    fn mountinfo_double_space_is_one_separator() {
        let m = parse_mountinfo(PROCFS_MOUNTINFO).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].root.as_str(), m[0].mount_point.as_str()),
            ("/", "/root")
        );
        assert_eq!(m[0].mount_options, ["rw", "nosuid"]);
        assert_eq!(
            (m[0].fs_type.as_str(), m[0].source.as_str()),
            ("rootfs", "rootfs")
        );
        assert_eq!((m[1].major, m[1].minor), (8, 1));
        assert_eq!(
            m[1].super_options,
            ["rw", "errors=remount-ro", "data=ordered"]
        );
    }

    #[test]
    fn mountinfo_without_optional_fields() {
        // The overlay line has no `shared:N` before the `-`.
        let m = parse_mountinfo(PROCFS_MOUNTINFO).unwrap();
        assert_eq!(m[2].fs_type, "xfs");
        assert_eq!(m[2].source, "/dev/mapper/rhel-root");
        assert_eq!((m[2].major, m[2].minor), (253, 0));
    }

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        // node-exporter-upstream proc/1/mountinfo: `\040` (space) and `\011` (tab).
        let text = "3148 3003 260:0 / /var/lib/kubelet/mounts/[vsanDatastore]\\040bafb9e5a/pvc.vmdk rw,relatime shared:31 - ext4 /dev/sda rw,data=ordered\n\
            3149 3004 260:0 / /mnt/a\\011b\\134c rw,relatime shared:32 - ext4 /dev/sda rw,data=ordered\n";
        let m = parse_mountinfo(text).unwrap();
        assert_eq!(
            m[0].mount_point,
            "/var/lib/kubelet/mounts/[vsanDatastore] bafb9e5a/pvc.vmdk"
        );
        assert_eq!(m[1].mount_point, "/mnt/a\tb\\c");
        assert_eq!(
            unescape_octal("a\\04"),
            "a\\04",
            "a truncated escape is kept"
        );
        assert_eq!(unescape_octal("a\\999"), "a\\999", "not octal: kept");
    }

    #[test]
    fn mountinfo_ro_and_noexec_come_from_mount_and_super_options() {
        let text = "33 24 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n\
            29 1 259:2 / / rw,relatime shared:1 master:3 - ext4 /dev/nvme0n1p2 ro,errors=remount-ro\n\
            32 28 0:27 / /run/lock rw,nosuid,nodev,noexec,relatime shared:6 - tmpfs tmpfs rw,size=5120k\n";
        let m = parse_mountinfo(text).unwrap();
        assert!(m[0].read_only() && m[0].noexec());
        assert!(m[1].read_only() && !m[1].noexec(), "superblock ro counts");
        assert!(!m[2].read_only() && m[2].noexec());
    }

    #[test]
    fn mountinfo_errors_name_the_line() {
        let e = parse_mountinfo("29 1 259:2 / / rw\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: fewer than 7 fields");
        let e = parse_mountinfo("\n29 1 x / / rw shared:1 - ext4 /dev/x rw\n").unwrap_err();
        assert!(e.to_string().starts_with("line 2: device \"x\""), "{e}");
        let e = parse_mountinfo("29 1 8:1 / / rw shared:1 ext4 /dev/x rw\n").unwrap_err();
        assert!(e.to_string().contains("separator"), "{e}");
        let e = parse_mountinfo("29 1 8:1 / / rw shared:1 -\n").unwrap_err();
        assert!(e.to_string().contains("no filesystem type"), "{e}");
    }

    // --- NUMA node dirs ---

    #[test]
    fn node_ids_are_numeric_and_ascending() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = dir.path().join("sys/devices/system/node");
        for d in ["node10", "node1", "node0", "possible", "nodex"] {
            std::fs::create_dir_all(nodes.join(d)).unwrap();
        }
        assert_eq!(node_ids(&Host::new(dir.path())).unwrap(), [0, 1, 10]);
        let bare = tempfile::tempdir().unwrap();
        assert_eq!(
            node_ids(&Host::new(bare.path())).unwrap(),
            Vec::<u32>::new()
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*", b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let lossy = String::from_utf8_lossy(&b);
            for t in [s.as_str(), &lossy] {
                let _ = parse_meminfo(t);
                let _ = parse_count(t);
                let _ = parse_flat_keyed(t);
                if let Ok(c) = parse_cpulist(t) {
                    let _ = (c.count(), c.to_string());
                }
            }
        }

        #[test]
        fn meminfo_like_text_never_panics(
            lines in proptest::collection::vec("(Node [0-9]{1,3} )?[A-Za-z_()]{1,16}: +[0-9]{0,21}( kB)?", 0..20)
        ) {
            let _ = parse_meminfo(&lines.join("\n"));
        }

        #[test]
        fn cpulist_like_text_round_trips(s in "[0-9]{1,10}(-[0-9]{1,10})?(,[0-9]{1,10}(-[0-9]{1,10})?){0,6}") {
            if let Ok(c) = parse_cpulist(&s) {
                prop_assert_eq!(parse_cpulist(&c.to_string()).unwrap(), c);
            }
        }

        #[test]
        fn parse_mountinfo_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_mountinfo(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn parse_mountinfo_never_panics_on_near_lines(
            fields in proptest::collection::vec("[-0-9:/ a-z\\\\,=]{0,12}", 0..14)
        ) {
            let _ = parse_mountinfo(&fields.join(" "));
        }

        #[test]
        fn unescape_round_trips_escaped_bytes(s in "[ -~\t]{0,40}") {
            let escaped: String = s.chars().map(|c| match c {
                ' ' => "\\040".to_string(),
                '\t' => "\\011".to_string(),
                '\\' => "\\134".to_string(),
                c => c.to_string(),
            }).collect();
            prop_assert_eq!(unescape_octal(&escaped), s);
        }
    }

    #[test]
    fn proc_meminfo_huge_page_lines_are_counts_or_bytes() {
        let text = "MemTotal:       16110080 kB\nAnonHugePages:     12288 kB\n\
HugePages_Total:       4\nHugePages_Free:        3\nHugePages_Rsvd:        1\n\
HugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:            8192 kB\n";
        let m = meminfo_hugepages(&parse_meminfo(text).unwrap());
        assert_eq!(
            m,
            MeminfoHugepages {
                hugepages_total: Some(4),
                hugepages_free: Some(3),
                hugepages_rsvd: Some(1),
                hugepages_surp: Some(0),
                hugepagesize_bytes: Some(2 << 20),
                hugetlb_bytes: Some(8 << 20),
                anon_huge_pages_bytes: Some(12 << 20),
            }
        );
    }

    #[test]
    fn proc_meminfo_without_huge_page_lines_gives_unknowns() {
        let m =
            meminfo_hugepages(&parse_meminfo("MemTotal:  1024 kB\nMemFree:  512 kB\n").unwrap());
        assert_eq!(m, MeminfoHugepages::default());
    }
}
