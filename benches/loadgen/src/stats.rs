//! Measurement: a log-linear latency histogram, and CPU time and resident memory of a process
//! read from `/proc`.
//!
//! The histogram is fixed-size and allocation-free after construction, so recording a sample
//! on the hot path (up to ~1M per second) costs an index computation and an increment.

use std::fs;

/// Sub-buckets per power of two: 64 gives a worst-case relative error of 1/64 (~1.6 %),
/// plenty for p50/p99 while keeping the table at a few thousand counters.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below `2 * SUB` get one exact bucket each; above, each power of two gets `SUB`.
const LINEAR: u64 = 2 * SUB;
const BUCKETS: usize = (LINEAR + (64 - SUB_BITS as u64 - 1) * SUB) as usize;

/// Latency histogram in microseconds.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < LINEAR {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS;
        let top = v >> shift; // in SUB..2*SUB
        (LINEAR + (u64::from(shift) - 1) * SUB + (top - SUB)) as usize
    }

    /// The middle of bucket `i`, the value reported for samples that fell into it.
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < LINEAR {
            return i;
        }
        let j = i - LINEAR;
        let shift = j / SUB + 1;
        let top = j % SUB + SUB;
        (top << shift) + ((1u64 << shift) - 1) / 2
    }

    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
    }

    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }

    /// The smallest recorded value with at least `p` (0..=1) of samples at or below it.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::value(i));
            }
        }
        None
    }
}

/// Clock ticks per second, the unit of `/proc/PID/stat` CPU times.
pub fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// User plus system CPU time of `pid` ("self" for this process), in clock ticks.
pub fn cpu_ticks(pid: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields
    // from the last ')'. utime and stime are fields 14 and 15, i.e. the 12th and 13th
    // after it.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| format!("{path}: no ')'"))?;
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let mut next = || -> Result<u64, String> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: bad utime/stime"))
    };
    Ok(next()? + next()?)
}

/// Resident set size of `pid` in KiB (VmRSS).
pub fn rss_kib(pid: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no VmRSS"))
}

/// SYNs the kernel dropped because a listen queue was full or a handshake could not be
/// queued (`TcpExt: ListenDrops` in `/proc/net/netstat`, which includes `ListenOverflows`).
/// A counter of the whole network namespace: on a quiet machine, the measured server's.
pub fn listen_drops() -> Result<u64, String> {
    let path = "/proc/net/netstat";
    let text = fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    // Pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: value1 value2 ...".
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return Err(format!("{path}: no TcpExt lines"));
    };
    names
        .split_ascii_whitespace()
        .zip(values.split_ascii_whitespace())
        .find(|(name, _)| *name == "ListenDrops")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| format!("{path}: no ListenDrops"))
}

/// Raises the soft open-file limit to the hard limit and checks that `need` descriptors fit.
pub fn raise_nofile(need: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read only the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
            }
        }
    }
    let have: u64 = lim.rlim_cur;
    if have < need {
        return Err(format!(
            "open-file limit {have} is below the {need} this run needs; raise it (ulimit -n)"
        ));
    }
    Ok(have)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_precision() {
        for v in [
            0u64,
            1,
            127,
            128,
            129,
            255,
            256,
            1000,
            12345,
            1 << 40,
            u64::MAX / 2,
        ] {
            let i = Histogram::index(v);
            assert!(i < BUCKETS, "{v}");
            let back = Histogram::value(i);
            let err = back.abs_diff(v) as f64 / v.max(1) as f64;
            assert!(err <= 1.0 / SUB as f64, "{v} -> {back}");
        }
        assert!(Histogram::index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn listen_drops_readable() {
        // Only a counter that exists; its value depends on the whole machine.
        assert!(listen_drops().is_ok());
    }

    #[test]
    fn percentiles() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.percentile(0.5), Some(50));
        assert_eq!(h.percentile(0.99), Some(99));
        assert_eq!(h.total, 100);
    }
}
