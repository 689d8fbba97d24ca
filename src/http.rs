//! A small HTTP/1.0 GET client for the monitoring probes (exporters,
//! Prometheus, Alertmanager): plain or TLS (the environment's CA as the only
//! trust anchor), every step under a deadline, the body capped, and errors
//! that name the URL and the cause but never a credential or a body.
//!
//! HTTP/1.0 keeps it small: the server answers with the whole body and
//! closes (no chunked encoding, no keep-alive), which is what Prometheus,
//! Alertmanager and redis_exporter (Go's net/http) do for 1.0 requests.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::secret::Secret;

/// An `http://` or `https://` URL: scheme, authority and base path. No user
/// information (credentials are references in the config, never in a URL),
/// no query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// TLS or not.
    pub tls: bool,
    /// Host as written (a name, an IPv4 address, or `[v6]`).
    pub host: String,
    /// Port (80 / 443 when not written).
    pub port: u16,
    /// Base path without a trailing slash (`""` for the root).
    pub path: String,
}

impl HttpUrl {
    /// Parses `s`, saying what is wrong with it.
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        // Checked first, so no message below can quote a password.
        if s.contains('@') {
            return Err(
                "a URL may not carry a user or password (use the config's secret references)"
                    .into(),
            );
        }
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("`{s}` is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) || authority.contains(['?', '#']) {
            return Err(format!("`{s}`: no query or fragment, only the base URL"));
        }
        let default = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: unclosed [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
                None if after.is_empty() => default,
                None => return Err(format!("`{s}`: bad host")),
            };
            (format!("[{h}]"), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
                ),
                None => (authority.to_string(), default),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{s}`: no usable host"));
        }
        Ok(HttpUrl {
            tls,
            host,
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// `host:port`, as dialled.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The URL of `path` (which starts with `/`) under this base.
    pub fn join(&self, path: &str) -> String {
        format!(
            "{}://{}{}{path}",
            if self.tls { "https" } else { "http" },
            self.authority(),
            self.path
        )
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.join(""))
    }
}

impl<'de> serde::Deserialize<'de> for HttpUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HttpUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How a request authenticates.
#[derive(Clone, Default)]
pub enum HttpAuth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic` of user and password.
    Basic(String, Secret),
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HttpAuth::None => "none",
            HttpAuth::Bearer(_) => "bearer token",
            HttpAuth::Basic(..) => "basic auth",
        })
    }
}

/// What a GET may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// TCP connect (and TLS handshake) deadline.
    pub connect: Duration,
    /// Deadline for sending the request and reading the whole answer.
    pub read: Duration,
    /// The largest body accepted; a larger one is an error, never read in
    /// part and judged.
    pub max_body: usize,
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// The status line's reason phrase.
    pub reason: String,
    /// `Content-Type`, lower-cased, if sent.
    pub content_type: Option<String>,
    /// `Date`, if sent (the server's clock).
    pub date: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a GET gave no usable answer. The URL is added by [`get`]'s caller
/// (every message below is about the URL it is reported with).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No TCP connection in time.
    #[error("no TCP answer within {0} ms")]
    ConnectTimeout(u128),
    /// The connection was refused or failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// No complete answer in time.
    #[error("no complete answer within {0} ms")]
    ReadTimeout(u128),
    /// Reading failed.
    #[error("read failed: {0}")]
    Read(String),
    /// The body is larger than the cap.
    #[error("the answer is larger than {0} bytes; refused rather than judged in part")]
    TooLarge(usize),
    /// Not an HTTP response.
    #[error("not an HTTP response")]
    NotHttp,
}

/// Sends `GET url` (a full URL under `base`'s scheme and authority) and
/// reads the whole answer, each step under `limits`.
pub async fn get(
    base: &HttpUrl,
    path_and_query: &str,
    auth: &HttpAuth,
    tls: Option<&Arc<rustls::ClientConfig>>,
    limits: &Limits,
) -> Result<Reply, HttpError> {
    let addr = base.authority();
    let dial = base.host.trim_start_matches('[').trim_end_matches(']');
    let tcp = match timeout(limits.connect, TcpStream::connect((dial, base.port))).await {
        Err(_) => return Err(HttpError::ConnectTimeout(limits.connect.as_millis())),
        Ok(Err(e)) => return Err(HttpError::Connect(crate::output::io_reason(&e))),
        Ok(Ok(s)) => s,
    };
    let mut request = format!(
        "GET {}{path_and_query} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: epic-audit\r\nAccept: application/json, text/plain;q=0.9\r\n",
        base.path
    );
    match auth {
        HttpAuth::None => {}
        HttpAuth::Bearer(t) => {
            request.push_str(&format!("Authorization: Bearer {}\r\n", t.expose()))
        }
        HttpAuth::Basic(u, p) => {
            use base64::Engine;
            let raw = format!("{u}:{}", p.expose());
            request.push_str(&format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ));
        }
    }
    request.push_str("\r\n");
    let raw = if base.tls {
        let config = tls
            .cloned()
            .ok_or_else(|| HttpError::Tls("https needs the environment's [tls] CA".into()))?;
        let name = rustls::pki_types::ServerName::try_from(dial.to_string())
            .map_err(|e| HttpError::Tls(format!("`{dial}` is not a usable server name: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let stream = match timeout(limits.connect, connector.connect(name, tcp)).await {
            Err(_) => return Err(HttpError::ConnectTimeout(limits.connect.as_millis())),
            Ok(Err(e)) => return Err(HttpError::Tls(e.to_string())),
            Ok(Ok(s)) => s,
        };
        exchange(stream, request, limits).await?
    } else {
        exchange(tcp, request, limits).await?
    };
    parse_reply(raw)
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: String,
    limits: &Limits,
) -> Result<Vec<u8>, HttpError> {
    // Headers beyond the body cap are not expected from the servers we talk
    // to; 64 KiB of slack covers them.
    let cap = limits.max_body.saturating_add(64 * 1024);
    let read = async {
        s.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(Some(buf));
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > cap {
                return Ok(None);
            }
        }
    };
    match timeout(limits.read, read).await {
        Err(_) => Err(HttpError::ReadTimeout(limits.read.as_millis())),
        Ok(Err(e)) => {
            let e: std::io::Error = e;
            // A server that closes a TLS stream without close_notify after
            // a complete answer is common; what was read is judged below.
            Err(HttpError::Read(crate::output::io_reason(&e)))
        }
        Ok(Ok(None)) => Err(HttpError::TooLarge(limits.max_body)),
        Ok(Ok(Some(b))) => Ok(b),
    }
}

fn parse_reply(raw: Vec<u8>) -> Result<Reply, HttpError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(HttpError::NotHttp)?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().unwrap_or("").starts_with("HTTP/") {
        return Err(HttpError::NotHttp);
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or(HttpError::NotHttp)?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut content_type = None;
    let mut date = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-type" => content_type = Some(v.trim().to_ascii_lowercase()),
                "date" => date = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    Ok(Reply {
        status,
        reason,
        content_type,
        date,
        body: raw[end + 4..].to_vec(),
    })
}

impl Reply {
    /// `HTTP 401 Unauthorized`.
    pub fn status_text(&self) -> String {
        format!("HTTP {} {}", self.status, self.reason)
            .trim_end()
            .to_string()
    }

    /// What the body is, for an error message, without quoting it: its
    /// content type and size.
    pub fn described(&self) -> String {
        format!(
            "{} of {} bytes",
            self.content_type.as_deref().unwrap_or("no content type"),
            self.body.len()
        )
    }

    /// The `Date` header as a time.
    pub fn server_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.date
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&chrono::Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_refuse_credentials() {
        let u = HttpUrl::parse("http://10.0.3.205:9090").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "10.0.3.205", 9090, "")
        );
        assert_eq!(
            u.join("/api/v1/targets"),
            "http://10.0.3.205:9090/api/v1/targets"
        );
        let u = HttpUrl::parse("https://prom.example/prometheus/").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/prometheus"));
        let u = HttpUrl::parse("http://[::1]:9090").unwrap();
        assert_eq!(u.authority(), "[::1]:9090");
        let e = HttpUrl::parse("http://admin:hunter2@prom:9090").unwrap_err();
        assert!(
            !e.contains("hunter2") && e.contains("user or password"),
            "{e}"
        );
        assert!(HttpUrl::parse("ftp://x").is_err());
        let e = HttpUrl::parse("admin:hunter2@prom:9090").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(HttpUrl::parse("http://x:99999").is_err());
        assert!(HttpUrl::parse("http://x/?a=1").is_err());
    }

    #[test]
    fn replies_parse() {
        let r = parse_reply(
            b"HTTP/1.0 401 Unauthorized\r\nContent-Type: Text/Plain\r\nDate: Sun, 06 Dec 2026 16:00:00 GMT\r\n\r\nno".to_vec(),
        )
        .unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.status_text(), "HTTP 401 Unauthorized");
        assert_eq!(r.content_type.as_deref(), Some("text/plain"));
        assert_eq!(r.body, b"no");
        assert_eq!(
            r.server_time().unwrap().to_rfc3339(),
            "2026-12-06T16:00:00+00:00"
        );
        assert_eq!(
            parse_reply(b"SSH-2.0\r\n\r\n".to_vec()).unwrap_err(),
            HttpError::NotHttp
        );
    }
}
