//! HTTP as the tests see it, through reqwest's blocking client: one request per connection
//! (`Connection: close`, no pooling, no proxy), 5 s timeouts, and the response as status, headers
//! and text. Also reading one sample out of a Prometheus text body.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// An HTTP response as the tests see it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The one client of the test process: no connection pool (every request opens and closes its
/// own connection, as the fd and connection counts of the tests assume), no proxy from the
/// environment, no redirects followed (a test sees the 3xx itself).
fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // reqwest is built with rustls but no provider of its own (the agent uses ring).
        agent::outputs::push::client::install_crypto_provider();
        reqwest::blocking::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
            .build()
            .expect("building the test HTTP client")
    })
}

/// `GET path` over a fresh connection, 5 s timeout.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    request(addr, "GET", path, &[], None)
}

/// One HTTP/1.1 request with `Connection: close` (and `Content-Length` when there is a body).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut req = client()
        .request(method, format!("http://{addr}{path}"))
        .header("Connection", "close");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b.to_vec());
    }
    let resp = req.send().map_err(std::io::Error::other)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp.bytes().map_err(std::io::Error::other)?;
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The value of the first sample line of a Prometheus text body that starts with `prefix` (the
/// metric name with its labels, e.g. `process_threads ` or `x{check="scratch"}`).
pub fn metric(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
