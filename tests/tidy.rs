//! Mechanical checks of the invariants ARCHITECTURE.md states: every source file starts with
//! a `//!` doc line, and the sans-IO layers touch no sockets, clock, threads or locks.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn files_under(rel: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(rel), &mut files);
    files
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let mut files = files_under("src");
    files.extend(files_under("examples"));
    files.extend(files_under("tests"));
    assert!(files.len() > 5, "found too few files: {files:?}");
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(missing.is_empty(), "files without a //! line: {missing:?}");
}

#[test]
fn sans_io_layers_do_no_io() {
    let banned = [
        "mio::",
        "std::net",
        "Instant::now",
        "SystemTime::now",
        "std::thread",
        "Mutex",
        "RwLock",
        "TcpStream",
    ];
    let mut files: Vec<PathBuf> = ["src/engineio", "src/http", "src/ws", "src/socketio"]
        .iter()
        .flat_map(|layer| files_under(layer))
        .collect();
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rooms.rs"));
    {
        for file in files {
            let text = fs::read_to_string(&file).expect("read");
            // Doc examples and unit tests may build an Instant as a fake clock's origin.
            let code_end = text.find("#[cfg(test)]").unwrap_or(text.len());
            let code: String = text[..code_end]
                .lines()
                .filter(|l| !l.trim_start().starts_with("///"))
                .collect::<Vec<_>>()
                .join("\n");
            for word in banned {
                assert!(
                    !code.contains(word),
                    "{} uses `{word}`: only src/server may do IO or read the clock",
                    file.display()
                );
            }
        }
    }
}
