//! A `log` logger for the tests that check what the server logs: every record of the
//! process, kept as `LEVEL message`. One test binary may install it once.
#![allow(dead_code)]

use std::sync::Mutex;

/// Every log record of the process, as `LEVEL message`.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
    fn flush(&self) {}
}

/// Installs the capture as the process's logger, recording up to `level`.
pub fn install(level: log::LevelFilter) {
    log::set_logger(&Capture).expect("the only logger");
    log::set_max_level(level);
}

/// The lines recorded so far that `keep` accepts.
pub fn lines(keep: impl Fn(&str) -> bool) -> Vec<String> {
    LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| keep(l))
        .cloned()
        .collect()
}
