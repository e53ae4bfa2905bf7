//! Prometheus text exposition: the few lines every gauge and counter needs, written once for
//! the engine's counters and the Socket.IO layer's.

use std::fmt::Write;

/// Whether a metric goes up only (a counter) or up and down (a gauge).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric, for a family whose samples follow.
pub(crate) fn header(out: &mut String, kind: Kind, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
}

/// Writes metrics of one kind that have a single sample each: `(name, help, value)`.
pub(crate) fn single(out: &mut String, kind: Kind, metrics: &[(&str, &str, u64)]) {
    for &(name, help, value) in metrics {
        header(out, kind, name, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// Writes one sample of a labelled family: `name{label="value"} sample`. The label value is
/// written as a quoted, escaped string.
pub(crate) fn labelled(out: &mut String, name: &str, label: &str, value: &str, sample: u64) {
    let _ = writeln!(out, "{name}{{{label}={value:?}}} {sample}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_exposition_format() {
        let mut out = String::new();
        single(&mut out, Kind::Counter, &[("a_total", "As.", 3)]);
        header(&mut out, Kind::Gauge, "b", "Bs.");
        labelled(&mut out, "b", "nsp", "/x\"y", 2);
        assert_eq!(
            out,
            "# HELP a_total As.\n# TYPE a_total counter\na_total 3\n\
             # HELP b Bs.\n# TYPE b gauge\nb{nsp=\"/x\\\"y\"} 2\n"
        );
    }
}
