//! Pure parsers of the NUMA files and the free-memory skew.

use super::*;
use crate::check::ParseError;
use crate::error::excerpt;
use crate::procfs_text::{CpuList, parse_count, parse_cpulist};

/// Parses a node's `distance` file: one row of the distance matrix, `10 21`.
pub fn parse_distance(text: &str) -> Result<Vec<u32>, ParseError> {
    let row: Vec<u32> = text
        .split_whitespace()
        .map(|w| {
            w.parse()
                .map_err(|_| ParseError::new(format!("bad distance {}", excerpt(w))))
        })
        .collect::<Result<_, _>>()?;
    if row.is_empty() {
        return Err(ParseError::new("no distances"));
    }
    Ok(row)
}

/// Parses `/proc/sys/kernel/numa_balancing` (0..=3 today; any small number accepted).
pub fn parse_numa_balancing(text: &str) -> Result<u32, ParseError> {
    let v = parse_count(text)?;
    u32::try_from(v).map_err(|_| ParseError::new(format!("numa_balancing {v} is out of range")))
}

/// `Cpus_allowed_list` and `Mems_allowed_list` of a `/proc/<pid>/status`; `None` when absent.
pub fn parse_status_cpuset(text: &str) -> Result<(Option<CpuList>, Option<CpuList>), ParseError> {
    let mut cpus = None;
    let mut mems = None;
    for (i, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "Cpus_allowed_list" => &mut cpus,
            "Mems_allowed_list" => &mut mems,
            _ => continue,
        };
        *slot = Some(
            parse_cpulist(value).map_err(|e| ParseError::at_line(i + 1, format!("{key}: {e}")))?,
        );
    }
    Ok((cpus, mems))
}

/// `(max - min) / max` of the free memory of nodes that have memory; `None` with fewer than two
/// such nodes, 0 when all are empty.
pub fn free_skew_ratio(nodes: &[Node]) -> Option<f64> {
    let free: Vec<u64> = nodes
        .iter()
        .filter(|n| n.memory_total_bytes.unwrap_or(0) > 0)
        .filter_map(|n| n.memory_free_bytes)
        .collect();
    if free.len() < 2 {
        return None;
    }
    let max = *free.iter().max()?;
    let min = *free.iter().min()?;
    if max == 0 {
        return Some(0.0);
    }
    Some((max - min) as f64 / max as f64)
}
