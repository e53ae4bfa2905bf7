//! The small web page an example serves at `/`, with the official Socket.IO client loaded
//! from its CDN; or, given `--client-js PATH`, from the example itself at
//! `/vendor/socket.io.min.js` (a LAN without internet access; the tests pass the copy npm
//! installed); or, given `--client-dir DIR` (the chat), from the server's own
//! `Config::serve_client` at `/socket.io/socket.io.min.js`. Each page says so plainly when
//! the client script could not load, and what to do about it.

use sioloop::protocol::http::{Request, Response};
use std::path::Path;

/// The client a page loads without `--client-js`; the hash is the one the Socket.IO docs
/// publish for this file (it matches the npm package's copy).
pub const CDN_CLIENT: &str = r#"<script src="https://cdn.socket.io/4.8.3/socket.io.min.js" integrity="sha384-kzavj5fiMwLKzzD1f8S7TeoVIEi7uKHvbTA3ueZkrzYq75pNQUiUi6Dy98Q3fxb0" crossorigin="anonymous"></script>"#;

/// Where a page finds the client when the example serves it itself.
const LOCAL_CLIENT: &str = r#"<script src="/vendor/socket.io.min.js"></script>"#;

/// Where a page's client script comes from.
pub enum Client<'a> {
    /// The CDN (no flag).
    Cdn,
    /// `--client-js PATH`: this copy, served by the page at `/vendor/socket.io.min.js`.
    File(&'a Path),
    /// `--client-dir DIR`: the server serves the bundle itself (`Config::serve_client`), at
    /// this URL.
    // Only the chat takes `--client-dir`; the other examples include this file too.
    #[allow(dead_code)]
    Served(&'a str),
}

impl<'a> Client<'a> {
    /// The CDN, or `--client-js PATH` when given.
    pub fn cdn_or_file(client_js: Option<&'a Path>) -> Client<'a> {
        match client_js {
            Some(path) => Client::File(path),
            None => Client::Cdn,
        }
    }
}

/// What a page shows when `io` is not defined after the client's script tag: the script
/// did not load (no internet on this network, a blocked CDN, or a `--client-dir` without
/// the file). `offers_client_dir`: the example takes `--client-dir` too.
fn no_client_notice(client: &Client<'_>, offers_client_dir: bool) -> String {
    let advice = match client {
        Client::Served(url) => format!(
            " from this server (<code>{url}</code>): the directory given with \
             <code>--client-dir</code> has no <code>socket.io.min.js</code>. Point it at the \
             <code>dist/</code> directory of the npm package <code>socket.io-client</code>."
        ),
        _ => {
            let dir = if offers_client_dir {
                ", or <code>--client-dir DIR</code> pointing at that <code>dist/</code> directory,"
            } else {
                ""
            };
            format!(
                " (is this network offline?). Start the server with <code>--client-js PATH</code> \
                 pointing at a copy of <code>socket.io.min.js</code> (from the npm package \
                 <code>socket.io-client</code>, <code>dist/</code>){dir} to serve it from here."
            )
        }
    };
    format!(
        r#"<script>
if (typeof io === "undefined") {{
  document.body.insertAdjacentHTML("afterbegin",
    '<p id="no-client" style="background:#fee;border:1px solid #c00;padding:8px">' +
    'The Socket.IO client script could not be loaded{advice}</p>');
}}
</script>"#
    )
}

/// A page at `/` and, with `--client-js`, the client script it loads.
pub struct Page {
    html: String,
    client_js: Option<Vec<u8>>,
}

impl Page {
    /// `template` has `<!-- socket.io client -->` where the client's script tag goes; the
    /// notice for a missing client follows it. `offers_client_dir` for an example that
    /// takes `--client-dir` (its notice mentions it).
    pub fn new(
        template: &str,
        client: Client<'_>,
        offers_client_dir: bool,
    ) -> std::io::Result<Page> {
        let (tag, client_js) = match client {
            Client::Cdn => (CDN_CLIENT.to_owned(), None),
            Client::File(path) => (LOCAL_CLIENT.to_owned(), Some(std::fs::read(path)?)),
            Client::Served(url) => (format!(r#"<script src="{url}"></script>"#), None),
        };
        let notice = no_client_notice(&client, offers_client_dir);
        let html = template.replace("<!-- socket.io client -->", &format!("{tag}\n{notice}"));
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
