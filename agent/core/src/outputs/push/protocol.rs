//! The agent's side of the push protocol (`proto::fleet`, protocol 2): what one push sends.
//!
//! The agent sends its full report (gzip-compressed from [`GZIP_FROM_BYTES`]) until the
//! aggregator announces protocol 2 (the `gluten-fleet-protocol` header of its answer), and
//! afterwards whenever the report's digest ([`proto::fleet::report_digest`]: statuses, rules,
//! inventory; never sentences, times or facts) differs from the one the aggregator acknowledged,
//! when the aggregator answers a heartbeat with `full_report_required`, and at least every
//! [`FULL_REPORT_EVERY`] (+-20%, anti-entropy). Otherwise it sends a heartbeat of a few hundred
//! bytes. An aggregator that stops answering heartbeats (404: an older one took its place) gets
//! full reports again. Response bodies are read up to [`MAX_RESPONSE_BYTES`].

use crate::snapshot::Snapshot;
use proto::fleet::{Heartbeat, HeartbeatReply, PROTOCOL_HEADER, PROTOCOL_VERSION};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Reports at least this large (JSON) are sent gzip-compressed.
pub const GZIP_FROM_BYTES: usize = 1024;
/// A full report goes out at least this often, whatever the digest says (jittered +-20%).
pub const FULL_REPORT_EVERY: Duration = Duration::from_secs(300);
/// Most bytes of any response body the agent reads.
pub const MAX_RESPONSE_BYTES: usize = 4096;

/// Why one push did not reach the aggregator or was not taken; the push loop logs it and retries.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The push token file (`push.token_file`) could not be read.
    #[error(transparent)]
    Token(#[from] serve::token::TokenError),
    /// The report could not be encoded or compressed.
    #[error("{what} the report: {source}")]
    Encode {
        what: &'static str,
        source: std::io::Error,
    },
    /// No answer: connection, TLS or timeout (the error's whole chain).
    #[error("{0}")]
    Send(String),
    /// The aggregator answered, and not with success (status and its reason).
    #[error("{0}")]
    Refused(String),
    /// A heartbeat answer that is not the protocol's JSON.
    #[error("aggregator answered the heartbeat with a malformed body: {0}")]
    Reply(#[source] serde_json::Error),
}

/// What the agent knows of the aggregator between pushes.
#[derive(Debug, Default)]
pub struct Protocol {
    /// The protocol the aggregator announced (0 or 1: full reports only).
    aggregator: u32,
    /// The digest of the last full report the aggregator acknowledged.
    acked: Option<String>,
    /// When the next full report is due anyway.
    full_due: Option<Instant>,
    /// The aggregator asked for the full report.
    full_requested: bool,
}

/// What one push sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Full,
    Heartbeat(String),
}

impl Protocol {
    /// The message for a report with `digest` at `now`.
    pub fn next(&self, digest: &str, now: Instant) -> Message {
        let fresh = self.aggregator >= 2
            && !self.full_requested
            && self.acked.as_deref() == Some(digest)
            && self.full_due.is_some_and(|due| now < due);
        if fresh {
            Message::Heartbeat(digest.to_string())
        } else {
            Message::Full
        }
    }

    /// A full report with `digest` was acknowledged by an aggregator announcing `announced`; `r`
    /// is uniform in [0, 1) for the anti-entropy jitter.
    pub fn full_acked(&mut self, digest: String, announced: u32, now: Instant, r: f64) {
        self.aggregator = announced;
        self.acked = Some(digest);
        self.full_requested = false;
        self.full_due = Some(now + FULL_REPORT_EVERY.mul_f64(0.8 + 0.4 * r.clamp(0.0, 1.0)));
    }

    /// The aggregator answered a heartbeat.
    pub fn heartbeat_answered(&mut self, reply: &HeartbeatReply) {
        if reply.full_report_required {
            self.full_requested = true;
        }
    }

    /// The aggregator does not take heartbeats (any more): full reports only.
    pub fn downgrade(&mut self) {
        self.aggregator = 1;
    }

    /// Whether the aggregator asked for the full report (push it now rather than at the next
    /// interval).
    pub fn full_requested(&self) -> bool {
        self.full_requested
    }
}

/// The report's JSON, gzip-compressed from [`GZIP_FROM_BYTES`]: (body, `Content-Encoding`).
pub fn encode_report(
    report: &proto::NodeReport,
) -> Result<(Vec<u8>, Option<&'static str>), PushError> {
    let json = serde_json::to_vec(report).map_err(|e| PushError::Encode {
        what: "encoding",
        source: e.into(),
    })?;
    if json.len() < GZIP_FROM_BYTES {
        return Ok((json, None));
    }
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::default(),
    );
    enc.write_all(&json)
        .and_then(|_| enc.finish())
        .map(|gz| (gz, Some("gzip")))
        .map_err(|source| PushError::Encode {
            what: "compressing",
            source,
        })
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of a response body.
async fn bounded_body(mut resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < MAX_RESPONSE_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c[..c.len().min(MAX_RESPONSE_BYTES - out.len())]),
            _ => break,
        }
    }
    out
}

fn chain(e: &reqwest::Error) -> PushError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    PushError::Send(msg)
}

async fn failure(resp: reqwest::Response) -> PushError {
    let status = resp.status();
    if status.is_redirection() {
        let to = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| l.chars().take(200).collect::<String>())
            .unwrap_or_default();
        return PushError::Refused(format!(
            "aggregator answered {status} (to {to:?}): redirects are not followed, set push.url \
             to the final address"
        ));
    }
    let body = bounded_body(resp).await;
    let why = serde_json::from_slice::<proto::ApiError>(&body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
    PushError::Refused(format!("aggregator answered {status}: {why}"))
}

/// The heartbeats endpoint next to the reports endpoint.
pub fn heartbeat_endpoint(reports_endpoint: &str) -> String {
    match reports_endpoint.strip_suffix("/reports") {
        Some(base) => format!("{base}/heartbeats"),
        None => format!("{reports_endpoint}/heartbeats"),
    }
}

/// One push of `snapshot`: a heartbeat or the full report, as [`Protocol`] says. `Ok` when the
/// aggregator took it (2xx); a heartbeat answered `full_report_required` is followed by the
/// full report at once.
pub async fn push(
    client: &reqwest::Client,
    settings: &PushSettings,
    snapshot: &Snapshot,
    protocol: &mut Protocol,
) -> Result<(), PushError> {
    let token = match &settings.token_file {
        // Read on every attempt, so a rotated token is picked up without a restart.
        Some(path) => Some(serve::token::read_token_async(path).await?),
        None => None,
    };
    let digest = proto::fleet::report_digest(&snapshot.report);
    if let Message::Heartbeat(d) = protocol.next(&digest, Instant::now()) {
        let hb = Heartbeat {
            protocol: PROTOCOL_VERSION,
            node: snapshot.report.node.name.clone(),
            digest: d,
            sent_at: common::time::rfc3339(std::time::SystemTime::now()),
        };
        let mut req = client
            .post(heartbeat_endpoint(&settings.endpoint))
            .json(&hb);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| chain(&e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND
            || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
        {
            protocol.downgrade();
        } else if !status.is_success() {
            return Err(failure(resp).await);
        } else {
            let body = bounded_body(resp).await;
            let reply: HeartbeatReply = serde_json::from_slice(&body).map_err(PushError::Reply)?;
            protocol.heartbeat_answered(&reply);
            if !reply.full_report_required {
                return Ok(());
            }
        }
    }
    let (body, encoding) = encode_report(&snapshot.report)?;
    let mut req = client
        .post(&settings.endpoint)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(e) = encoding {
        req = req.header(reqwest::header::CONTENT_ENCODING, e);
    }
    if let Some(t) = &token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| chain(&e))?;
    if !resp.status().is_success() {
        return Err(failure(resp).await);
    }
    let announced = resp
        .headers()
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(1);
    drop(bounded_body(resp).await);
    protocol.full_acked(digest, announced, Instant::now(), rand::random());
    Ok(())
}

/// Where and how to push.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Full URL of `POST /api/v1/reports`.
    pub endpoint: String,
    pub token_file: Option<PathBuf>,
    pub timeout: Duration,
    pub max_backoff: Duration,
    pub interval: Duration,
    /// CA, client certificate and key (`push.ca_file`, `client_cert_file`, `client_key_file`).
    pub tls: super::client::PushTlsFiles,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_until_announced_then_heartbeats_until_the_digest_or_the_clock_says_otherwise() {
        let t0 = Instant::now();
        let mut p = Protocol::default();
        assert_eq!(p.next("d1", t0), Message::Full);
        // An old aggregator (no header): full reports every time.
        p.full_acked("d1".into(), 1, t0, 0.5);
        assert_eq!(p.next("d1", t0), Message::Full);
        p.full_acked("d1".into(), 2, t0, 0.5);
        assert_eq!(p.next("d1", t0), Message::Heartbeat("d1".into()));
        assert_eq!(p.next("d2", t0), Message::Full, "a changed digest");
        // Anti-entropy: due after FULL_REPORT_EVERY (r = 0.5: exactly).
        assert_eq!(p.next("d1", t0 + FULL_REPORT_EVERY), Message::Full);
        assert_eq!(
            p.next("d1", t0 + FULL_REPORT_EVERY - Duration::from_secs(1)),
            Message::Heartbeat("d1".into())
        );
        p.heartbeat_answered(&HeartbeatReply {
            full_report_required: true,
            reason: None,
        });
        assert!(p.full_requested());
        assert_eq!(p.next("d1", t0), Message::Full, "the aggregator asked");
        p.full_acked("d1".into(), 2, t0, 0.0);
        assert_eq!(p.next("d1", t0), Message::Heartbeat("d1".into()));
        p.downgrade();
        assert_eq!(p.next("d1", t0), Message::Full);
    }

    #[test]
    fn anti_entropy_is_jittered_within_twenty_percent() {
        let t0 = Instant::now();
        for (r, secs) in [(0.0, 240.0), (1.0, 360.0)] {
            let mut p = Protocol::default();
            p.full_acked("d".into(), 2, t0, r);
            let due = p.full_due.unwrap() - t0;
            assert!((due.as_secs_f64() - secs).abs() < 1e-6, "{r}: {due:?}");
        }
    }

    #[test]
    fn large_reports_go_gzipped_small_ones_plain() {
        let mut r = proto::NodeReport {
            schema_version: proto::SCHEMA_VERSION,
            node: proto::NodeInfo {
                name: "n".into(),
                ..Default::default()
            },
            status: proto::Status::Ok,
            generated_at: "t".into(),
            checks: vec![],
        };
        let (body, enc) = encode_report(&r).unwrap();
        assert_eq!(enc, None);
        assert_eq!(
            serde_json::from_slice::<proto::NodeReport>(&body).unwrap(),
            r
        );
        r.node
            .inventory
            .insert("cpu.flags".into(), "avx2 ".repeat(400));
        let (body, enc) = encode_report(&r).unwrap();
        assert_eq!(enc, Some("gzip"));
        assert!(body.len() < 1000, "{}", body.len());
    }

    #[test]
    fn heartbeats_go_next_to_reports() {
        assert_eq!(
            heartbeat_endpoint("http://a:9900/api/v1/reports"),
            "http://a:9900/api/v1/heartbeats"
        );
    }
}
