//! The small web page an example serves at `/`, with the official Socket.IO client loaded
//! from its CDN or, given `--client-js PATH`, from the example itself at
//! `/vendor/socket.io.min.js` (a LAN without internet access; the tests pass the copy npm
//! installed). Each page says so plainly when the client script could not load.

use sioloop::protocol::http::{Request, Response};
use std::path::Path;

/// The client a page loads without `--client-js`; the hash is the one the Socket.IO docs
/// publish for this file (it matches the npm package's copy).
pub const CDN_CLIENT: &str = r#"<script src="https://cdn.socket.io/4.8.3/socket.io.min.js" integrity="sha384-kzavj5fiMwLKzzD1f8S7TeoVIEi7uKHvbTA3ueZkrzYq75pNQUiUi6Dy98Q3fxb0" crossorigin="anonymous"></script>"#;

/// Where a page finds the client when the example serves it itself.
const LOCAL_CLIENT: &str = r#"<script src="/vendor/socket.io.min.js"></script>"#;

/// What a page shows when `io` is not defined after the client's script tag: the script
/// did not load (no internet on this network, or a blocked CDN).
pub const NO_CLIENT_NOTICE: &str = r#"<script>
if (typeof io === "undefined") {
  document.body.insertAdjacentHTML("afterbegin",
    '<p id="no-client" style="background:#fee;border:1px solid #c00;padding:8px">' +
    'The Socket.IO client script could not be loaded (is this network offline?). ' +
    'Start the server with <code>--client-js PATH</code> pointing at a copy of ' +
    '<code>socket.io.min.js</code> (from the npm package <code>socket.io-client</code>, ' +
    '<code>dist/</code>) to serve it from here.</p>');
}
</script>"#;

/// A page at `/` and, with `--client-js`, the client script it loads.
pub struct Page {
    html: String,
    client_js: Option<Vec<u8>>,
}

impl Page {
    /// `template` has `<!-- socket.io client -->` where the client's script tag goes; the
    /// notice for a missing client follows it.
    pub fn new(template: &str, client_js: Option<&Path>) -> std::io::Result<Page> {
        let client_js = client_js.map(std::fs::read).transpose()?;
        let tag = if client_js.is_some() {
            LOCAL_CLIENT
        } else {
            CDN_CLIENT
        };
        let html = template.replace(
            "<!-- socket.io client -->",
            &format!("{tag}\n{NO_CLIENT_NOTICE}"),
        );
        Ok(Page { html, client_js })
    }

    /// The page's answer to an application request: the page at `/`, the client script
    /// if served locally, `None` (404) otherwise.
    pub fn respond(&self, request: &Request) -> Option<Response> {
        let (content_type, body) = match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/") => ("text/html; charset=utf-8", self.html.as_bytes()),
            ("GET", "/vendor/socket.io.min.js") => ("text/javascript", self.client_js.as_deref()?),
            _ => return None,
        };
        Some(asset(content_type, body))
    }
}

/// A static file of an example's page: not cached (the example may be rebuilt with a new
/// page), and taken for the content type it says it is.
pub fn asset(content_type: &str, body: impl Into<Vec<u8>>) -> Response {
    Response::new(200, content_type, body)
        .with_header("Cache-Control", "no-cache")
        .with_header("X-Content-Type-Options", "nosniff")
}
