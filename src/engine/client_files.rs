//! The Socket.IO client bundle served under the Engine.IO path (`Config::serve_client`), as
//! Node's `serveClient` serves `socket.io.min.js` and its siblings: read once when the
//! engine is made, so a request costs no file IO on the loop, and answered with an ETag
//! taken from the content.

use super::Engine;
use super::conn::Chunk;
use crate::protocol::engineio::session::CloseReason;
use crate::protocol::http::{self, Request};
use mio::Token;
use std::path::Path;
use std::rc::Rc;

/// The files the reference server serves from `client-dist/`, and only those: anything
/// else under the path goes to Engine.IO.
pub(super) const CLIENT_FILES: [&str; 8] = [
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
];

/// The largest file loaded: the bundles are about 50 KB and their maps a few hundred, so a
/// larger file is not the client (and would be held in memory for the server's life).
pub(super) const MAX_CLIENT_FILE: u64 = 8 * 1024 * 1024;

/// One loaded file: its bytes, shared by every response that sends it (a write queue
/// takes a reference, not a copy), and its strong ETag, quoted.
#[derive(Debug)]
struct ClientFile {
    name: &'static str,
    body: Rc<[u8]>,
    etag: String,
}

/// The loaded files (empty when `serve_client` is off: then one `is_empty` check is all an
/// Engine.IO request pays).
#[derive(Debug, Default)]
pub(super) struct ClientFiles {
    files: Vec<ClientFile>,
}

impl ClientFiles {
    /// Reads those of [`CLIENT_FILES`] that `dir` has. A file that is missing is skipped
    /// quietly (a bundle directory need not hold every variant); one that cannot be read or
    /// is larger than [`MAX_CLIENT_FILE`] with a warning, as is a directory with none.
    pub(super) fn load(dir: &Path) -> ClientFiles {
        let mut files = Vec::new();
        for name in CLIENT_FILES {
            let path = dir.join(name);
            match std::fs::metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    log::warn!("sioloop: serve_client: {}: {e}", path.display());
                    continue;
                }
                Ok(meta) if meta.len() > MAX_CLIENT_FILE => {
                    log::warn!(
                        "sioloop: serve_client: {} is {} bytes, more than the {} a client \
                         bundle takes; not served",
                        path.display(),
                        meta.len(),
                        MAX_CLIENT_FILE
                    );
                    continue;
                }
                Ok(_) => {}
            }
            match std::fs::read(&path) {
                // Checked again: the file may have grown since its metadata was read.
                Ok(body) if body.len() as u64 <= MAX_CLIENT_FILE => {
                    let etag = etag(&body);
                    files.push(ClientFile {
                        name,
                        body: body.into(),
                        etag,
                    });
                }
                Ok(_) => log::warn!(
                    "sioloop: serve_client: {} grew past {} bytes; not served",
                    path.display(),
                    MAX_CLIENT_FILE
                ),
                Err(e) => log::warn!("sioloop: serve_client: {}: {e}", path.display()),
            }
        }
        if files.is_empty() {
            log::warn!(
                "sioloop: serve_client: {} has none of {} (it should be the dist/ directory \
                 of the npm package socket.io-client); no client is served",
                dir.display(),
                CLIENT_FILES.join(", ")
            );
        }
        ClientFiles { files }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn get(&self, name: &str) -> Option<&ClientFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// A strong ETag for `body`: the first 16 hex digits of its SHA-1, quoted. The reference
/// server uses its version, which is the same for every file; a digest changes whenever the
/// file does, so a browser never keeps an old bundle after the directory is updated.
fn etag(body: &[u8]) -> String {
    use sha1::Digest as _;
    use std::fmt::Write as _;
    let digest = sha1::Sha1::digest(body);
    let mut tag = String::with_capacity(18);
    tag.push('"');
    for byte in &digest[..8] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    tag
}

/// Whether an `If-None-Match` value matches `etag` (quoted): the strong form, the weak form
/// `W/"..."` (what a proxy that altered the body sends back), `*`, or any of a
/// comma-separated list of them.
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

impl Engine {
    /// Answers `request` if it is a GET or HEAD of a loaded client file under the
    /// Engine.IO path; returns whether it did. Anything else is left to Engine.IO (as in
    /// the reference server, where an unknown name gets the engine's `400`).
    pub(super) fn serve_client_file(&mut self, token: Token, request: &Request) -> bool {
        let head_only = match request.method.as_str() {
            "GET" => false,
            "HEAD" => true,
            _ => return false,
        };
        let Some(name) = request.path.strip_prefix(self.config.path.as_str()) else {
            return false;
        };
        let Some(file) = self.client_files.get(name) else {
            return false;
        };
        // The bytes are shared, not copied; the tag goes into the answer's headers anyway.
        let (body, etag) = (Rc::clone(&file.body), file.etag.clone());
        let Some(conn) = self.conns.get_mut(token.0) else {
            return true;
        };
        if conn.out.len() > self.config.max_queued_bytes {
            // Pipelined requests find the last answer still queued (flushing comes after
            // parsing): write it now, and what is left is what the client did not read.
            let transport = &mut self.transport;
            let written = conn.out.flush(
                |slices| transport.send(token.0, slices),
                &mut self.stats.bytes_out,
                &mut self.pool,
            );
            if let Err(e) = written
                && e.kind() != std::io::ErrorKind::WouldBlock
            {
                self.close_conn(token, CloseReason::TransportError);
                return true;
            }
            if conn.out.len() > self.config.max_queued_bytes {
                // It asks again and again without reading the answers: what one client
                // leaves unread is bounded here as on its WebSocket.
                conn.out = Default::default();
                self.close_conn(token, CloseReason::SlowConsumer);
                return true;
            }
            self.account_conn(token);
        }
        let Some(conn) = self.conns.get_mut(token.0) else {
            return true;
        };
        let keep_alive = request.keep_alive() && !self.shutting_down;
        let not_modified = request
            .header("if-none-match")
            .is_some_and(|v| matches(v, &etag));
        let content_type = if name.ends_with(".map") {
            "application/json; charset=utf-8"
        } else {
            "application/javascript; charset=utf-8"
        };
        let mut headers = vec![
            ("Content-Type".to_owned(), content_type.to_owned()),
            ("Cache-Control".to_owned(), "public, max-age=0".to_owned()),
            ("ETag".to_owned(), etag),
        ];
        if let Some(cors) = &self.config.cors {
            cors.add_headers(request.header("origin"), &mut headers);
        }
        let status = if not_modified { 304 } else { 200 };
        // A 304 and a HEAD carry the length a 200 would have (RFC 9110 8.6) and no body.
        conn.out.extend_with(&mut self.pool, |out| {
            http::write_head(out, status, &headers, body.len(), keep_alive)
        });
        if !not_modified && !head_only {
            // The bytes loaded at start, shared: a thousand browsers loading the page at
            // once do not make a thousand copies.
            conn.out.push(&mut self.pool, Chunk::Shared(body));
        }
        if !keep_alive {
            conn.close_after_flush = true;
        }
        self.queue_flush(token);
        self.arm_idle_deadline(token);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_hex_digests_that_follow_the_content() {
        let a = etag(b"console.log(1)");
        assert_eq!(a.len(), 18);
        assert!(a.starts_with('"') && a.ends_with('"'));
        assert!(a[1..17].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, etag(b"console.log(1)"));
        assert_ne!(a, etag(b"console.log(2)"));
    }

    #[test]
    fn if_none_match_takes_strong_weak_lists_and_star() {
        let tag = "\"0123456789abcdef\"";
        assert!(matches(tag, tag));
        assert!(matches("W/\"0123456789abcdef\"", tag));
        assert!(matches("\"other\", W/\"0123456789abcdef\"", tag));
        assert!(matches("*", tag));
        assert!(!matches("\"other\"", tag));
        assert!(!matches("0123456789abcdef", tag));
        assert!(!matches("", tag));
    }
}
