//! The agents' side of the API: `POST /api/v1/reports` and `POST /api/v1/heartbeats`.
//! Authentication, the size limit (after gzip decompression), decoding and validation (the
//! documented limits below), then the single writer. Everything is checked before anything is
//! stored: a bad report never changes state.

use super::{auth, error, json};
use crate::fleet::{Accepted, Beat};
use crate::queue::{Incoming, Work, WriteError, WriteOutcome};
use crate::state::FleetState;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::fleet::{Heartbeat, HeartbeatReply, PROTOCOL_HEADER, PROTOCOL_VERSION};
use proto::{NodeReport, SCHEMA_VERSION};
use serde::Deserialize;
use serve::tls::PeerCertificates;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// Limits on what one report may carry (422 naming the limit beyond them). They bound the
/// aggregator's memory per node and what the fleet view and `/metrics` grow with.
pub const MAX_INVENTORY_KEYS: usize = 128;
pub const MAX_INVENTORY_KEY_BYTES: usize = 128;
pub const MAX_INVENTORY_VALUE_BYTES: usize = 4096;
pub const MAX_CHECKS: usize = 64;
pub const MAX_CHECK_NAME_BYTES: usize = 64;
pub const MAX_FINDINGS_PER_CHECK: usize = 256;
/// A check's `summary`, a finding's `message`, `subject` or `rule`.
pub const MAX_TEXT_BYTES: usize = 8192;
/// A check's `facts`, as compact JSON.
pub const MAX_FACTS_BYTES: usize = 64 * 1024;
/// Largest heartbeat body.
pub const MAX_HEARTBEAT_BYTES: usize = 4096;

/// A report over one of the limits above: what was measured, its size, the limit and its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is {n}, over the limit of {max} ({name})")]
pub struct OverLimit {
    pub what: String,
    pub n: usize,
    pub max: usize,
    pub name: &'static str,
}

/// Why a report is over a limit, naming the limit; `Ok` within all of them. `body_len` is the
/// size of the JSON it came from: no check's facts can exceed [`MAX_FACTS_BYTES`] in a smaller
/// body, so they are measured only in a larger one.
pub fn within_limits(r: &NodeReport, body_len: usize) -> Result<(), OverLimit> {
    let over = |what: String, n: usize, max: usize, name: &'static str| {
        Err(OverLimit { what, n, max, name })
    };
    let inv = &r.node.inventory;
    if inv.len() > MAX_INVENTORY_KEYS {
        return over(
            "the number of node.inventory keys".into(),
            inv.len(),
            MAX_INVENTORY_KEYS,
            "MAX_INVENTORY_KEYS",
        );
    }
    for (k, v) in inv {
        if k.len() > MAX_INVENTORY_KEY_BYTES {
            return over(
                format!("the length of node.inventory key {:?}...", trunc(k)),
                k.len(),
                MAX_INVENTORY_KEY_BYTES,
                "MAX_INVENTORY_KEY_BYTES",
            );
        }
        if v.len() > MAX_INVENTORY_VALUE_BYTES {
            return over(
                format!("the length of node.inventory.{k}"),
                v.len(),
                MAX_INVENTORY_VALUE_BYTES,
                "MAX_INVENTORY_VALUE_BYTES",
            );
        }
    }
    if r.checks.len() > MAX_CHECKS {
        return over(
            "the number of checks".into(),
            r.checks.len(),
            MAX_CHECKS,
            "MAX_CHECKS",
        );
    }
    for c in &r.checks {
        if c.name.len() > MAX_CHECK_NAME_BYTES {
            return over(
                format!("the length of check name {:?}...", trunc(&c.name)),
                c.name.len(),
                MAX_CHECK_NAME_BYTES,
                "MAX_CHECK_NAME_BYTES",
            );
        }
        if c.summary.len() > MAX_TEXT_BYTES {
            return over(
                format!("the length of checks[{}].summary", c.name),
                c.summary.len(),
                MAX_TEXT_BYTES,
                "MAX_TEXT_BYTES",
            );
        }
        if c.findings.len() > MAX_FINDINGS_PER_CHECK {
            return over(
                format!("the number of checks[{}].findings", c.name),
                c.findings.len(),
                MAX_FINDINGS_PER_CHECK,
                "MAX_FINDINGS_PER_CHECK",
            );
        }
        for f in &c.findings {
            let longest = [Some(&f.message), f.subject.as_ref(), f.rule.as_ref()]
                .into_iter()
                .flatten()
                .map(String::len)
                .max()
                .unwrap_or(0);
            if longest > MAX_TEXT_BYTES {
                return over(
                    format!("the length of a text of checks[{}].findings", c.name),
                    longest,
                    MAX_TEXT_BYTES,
                    "MAX_TEXT_BYTES",
                );
            }
        }
        if body_len <= MAX_FACTS_BYTES {
            continue;
        }
        let facts = serde_json::to_vec(&c.facts).map(|v| v.len()).unwrap_or(0);
        if facts > MAX_FACTS_BYTES {
            return over(
                format!("the size of checks[{}].facts as JSON", c.name),
                facts,
                MAX_FACTS_BYTES,
                "MAX_FACTS_BYTES",
            );
        }
    }
    Ok(())
}

fn trunc(s: &str) -> &str {
    let mut end = s.len().min(32);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The node names the aggregator accepts are the wire contract's.
pub use proto::valid_node_name;

/// Why a pushed body is refused before it reaches the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Not JSON, or not a report: 400.
    Malformed(String),
    /// A report this aggregator will not take (another schema, a bad node name): 422.
    Unprocessable(String),
}

/// The first key that appears twice in one object of the JSON `bytes` (at any depth); `None`
/// when there is none, or when `bytes` is not JSON (the real parse says why).
pub fn duplicate_key(bytes: &[u8]) -> Option<String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::cell::RefCell;
    struct Walk<'a>(&'a RefCell<Option<String>>);
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Walk(self.0))?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if !seen.insert(key.to_string()) {
                    *self.0.borrow_mut() = Some(key.into_owned());
                    return Err(serde::de::Error::custom("duplicate key"));
                }
                map.next_value_seed(Walk(self.0))?;
            }
            Ok(())
        }
    }
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = Walk(&found).deserialize(&mut de);
    found.into_inner()
}

/// Decodes and validates a pushed report (pure: the whole of the aggregator's input checking
/// after authentication and the size limit).
pub fn decode_report(bytes: &[u8]) -> Result<NodeReport, Rejected> {
    if let Some(key) = duplicate_key(bytes) {
        return Err(Rejected::Unprocessable(format!(
            "the key {:?} appears twice in one object: refused rather than guessing which counts",
            trunc(&key)
        )));
    }
    let report: NodeReport = match serde_json::from_slice(bytes) {
        Ok(r) => r,
        Err(e) => {
            // A report of another schema may not parse as this one: say which problem it is.
            #[derive(Deserialize)]
            struct Probe {
                schema_version: u32,
            }
            if let Ok(p) = serde_json::from_slice::<Probe>(bytes)
                && p.schema_version != SCHEMA_VERSION
            {
                return Err(Rejected::Unprocessable(unsupported(p.schema_version)));
            }
            return Err(Rejected::Malformed(format!("malformed report: {e}")));
        }
    };
    if report.schema_version != SCHEMA_VERSION {
        return Err(Rejected::Unprocessable(unsupported(report.schema_version)));
    }
    if !valid_node_name(&report.node.name) {
        return Err(Rejected::Unprocessable(format!(
            "node.name {:?} is not 1 to 253 characters of A-Z a-z 0-9 . _ - (and not . or ..)",
            report.node.name
        )));
    }
    if common::time::parse_rfc3339(&report.generated_at).is_none() {
        return Err(Rejected::Unprocessable(format!(
            "generated_at {:?} is not an RFC 3339 time",
            trunc(&report.generated_at)
        )));
    }
    within_limits(&report, bytes.len()).map_err(|e| Rejected::Unprocessable(e.to_string()))?;
    Ok(report)
}

/// Push protocol versions whose heartbeats this aggregator reads.
pub const HEARTBEAT_PROTOCOLS: std::ops::RangeInclusive<u32> = 2..=PROTOCOL_VERSION;

/// Decodes and validates a heartbeat: 400 when it is not one, 422 for a duplicate key, an
/// unknown protocol, a `sent_at` that is not RFC 3339, a bad node name or digest.
pub fn decode_heartbeat(bytes: &[u8]) -> Result<Heartbeat, Rejected> {
    if let Some(key) = duplicate_key(bytes) {
        return Err(Rejected::Unprocessable(format!(
            "the key {:?} appears twice in one object of the heartbeat",
            trunc(&key)
        )));
    }
    let hb: Heartbeat = serde_json::from_slice(bytes)
        .map_err(|e| Rejected::Malformed(format!("malformed heartbeat: {e}")))?;
    if !HEARTBEAT_PROTOCOLS.contains(&hb.protocol) {
        return Err(Rejected::Unprocessable(format!(
            "heartbeat protocol {} is not one this aggregator reads ({} to {})",
            hb.protocol,
            HEARTBEAT_PROTOCOLS.start(),
            HEARTBEAT_PROTOCOLS.end()
        )));
    }
    if common::time::parse_rfc3339(&hb.sent_at).is_none() {
        return Err(Rejected::Unprocessable(format!(
            "heartbeat sent_at {:?} is not an RFC 3339 time",
            trunc(&hb.sent_at)
        )));
    }
    if !valid_node_name(&hb.node) || hb.digest.is_empty() || hb.digest.len() > 64 {
        return Err(Rejected::Unprocessable(format!(
            "heartbeat of node {:?}: the node name must be 1 to 253 characters of A-Z a-z 0-9 . _ - and the digest 1 to 64 characters",
            trunc(&hb.node)
        )));
    }
    Ok(hb)
}

/// Why a body could not be read: the status and the sentence (and, for 503, `Retry-After`).
type Refusal = (StatusCode, String);

/// A body as read, with its share of the in-flight budget (held until the request is done).
#[derive(Debug)]
pub struct BodyRead {
    pub bytes: Bytes,
    _reserved: Vec<super::budget::Reserved>,
}

/// Reads a request body of at most `limit` bytes, decompressing `Content-Encoding: gzip` (the
/// limit applies after decompression too: a gzip bomb gets 413 having inflated at most `limit`
/// bytes). `limit_name` names the limit in a 413. The body's `Content-Length` (else `limit`) and,
/// for gzip, `limit` again are reserved from `budget` first: 503 when they do not fit.
/// A gzip body must be one member with nothing after it.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    limit_name: &str,
    budget: &super::budget::BodyBudget,
) -> Result<BodyRead, Refusal> {
    let too_large = |after: &str| {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {limit_name} ({limit} bytes){after}"),
        )
    };
    let busy = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many request bodies in flight (max_inflight_body_bytes, {} bytes): retry later",
                budget.limit()
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(""));
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let gzip = match encoding.as_str() {
        "identity" | "" => false,
        "gzip" | "x-gzip" => true,
        other => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {other:?} is not supported (gzip or none)"),
            ));
        }
    };
    let mut reserved = vec![
        budget
            .reserve(declared.unwrap_or(limit as u64))
            .ok_or_else(busy)?,
    ];
    let raw = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let e = e.into_inner();
        if e.is::<http_body_util::LengthLimitError>() {
            too_large("")
        } else {
            // Cut short, or not sent in full within the body deadline.
            (
                StatusCode::BAD_REQUEST,
                format!("request body not received in full: {e}"),
            )
        }
    })?;
    if !gzip {
        return Ok(BodyRead {
            bytes: raw,
            _reserved: reserved,
        });
    }
    reserved.push(budget.reserve(limit as u64).ok_or_else(busy)?);
    let malformed = |e: String| (StatusCode::BAD_REQUEST, format!("malformed gzip body: {e}"));
    let mut out = Vec::with_capacity((raw.len() * 4).min(limit));
    let mut dec = flate2::bufread::GzDecoder::new(&raw[..]);
    (&mut dec)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| malformed(e.to_string()))?;
    if out.len() > limit {
        return Err(too_large(" after gzip decompression"));
    }
    // One member, nothing after it: a second member or trailing bytes are not what the agent
    // sends, and would be ignored silently.
    let rest = dec.into_inner();
    if !rest.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the end of the gzip member (a second member or trailing data)",
            rest.len()
        )));
    }
    Ok(BodyRead {
        bytes: Bytes::from(out),
        _reserved: reserved,
    })
}

/// `r` with `Retry-After: 1`.
fn busy(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn with_protocol(mut r: Response) -> Response {
    r.headers_mut().insert(
        PROTOCOL_HEADER,
        HeaderValue::from_str(&PROTOCOL_VERSION.to_string()).expect("a number"),
    );
    r
}

/// Sends `work` to the writer and waits for the outcome.
async fn store(st: &FleetState, work: Work) -> Result<WriteOutcome, WriteError> {
    let (ack, done) = oneshot::channel();
    match st.writer.send(Incoming { work, ack }).await {
        Ok(()) => done.await.unwrap_or(Err(WriteError::Stopped)),
        Err(_) => Err(WriteError::Stopped),
    }
}

/// `POST /api/v1/reports`: 204 once stored durably, announcing the push protocol spoken.
pub async fn post_report(
    State(st): State<Arc<FleetState>>,
    peer: Option<Extension<PeerCertificates>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let c = &st.counters;
    let reject = |counter: &AtomicU64, status: StatusCode, why: String| {
        counter.fetch_add(1, Ordering::Relaxed);
        error(status, why)
    };
    let ids = match auth::push_identity(&st, &headers, peer.as_ref().map(|p| &p.0)) {
        Ok(ids) => ids,
        Err(r) => return *r,
    };
    let read = match read_body(
        &headers,
        body,
        st.config.max_report_bytes as usize,
        "max_report_bytes",
        &st.bodies,
    )
    .await
    {
        Ok(b) => b,
        Err((status, why)) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            return reject(&c.too_large, status, why);
        }
        Err((status, why)) if status == StatusCode::SERVICE_UNAVAILABLE => {
            return busy(reject(&c.too_large, status, why));
        }
        Err((status, why)) => return reject(&c.malformed, status, why),
    };
    let bytes = &read.bytes;
    let report = match decode_report(bytes) {
        Ok(r) => r,
        Err(Rejected::Malformed(why)) => return reject(&c.malformed, StatusCode::BAD_REQUEST, why),
        Err(Rejected::Unprocessable(why)) => {
            return reject(&c.unprocessable, StatusCode::UNPROCESSABLE_ENTITY, why);
        }
    };
    if let Err(r) = auth::push_for_node(&st, &ids, &report.node.name)
        .and_then(|()| auth::within_max_nodes(&st, &report.node.name))
    {
        return *r;
    }
    // Stored as the node sent it (decompressed).
    let json: Arc<[u8]> = Arc::from(&bytes[..]);
    match store(&st, Work::Report(Box::new(Accepted::new(report, json)))).await {
        Ok(_) => {
            c.accepted.fetch_add(1, Ordering::Relaxed);
            with_protocol(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => reject(
            &c.store_errors,
            StatusCode::SERVICE_UNAVAILABLE,
            format!("could not store the report: {e}"),
        ),
    }
}

/// `POST /api/v1/heartbeats`: 200 with a [`HeartbeatReply`]; `full_report_required` when the
/// node or its digest is unknown here.
pub async fn post_heartbeat(
    State(st): State<Arc<FleetState>>,
    peer: Option<Extension<PeerCertificates>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let c = &st.counters;
    let ids = match auth::push_identity(&st, &headers, peer.as_ref().map(|p| &p.0)) {
        Ok(ids) => ids,
        Err(r) => return *r,
    };
    let read = match read_body(
        &headers,
        body,
        MAX_HEARTBEAT_BYTES,
        "the heartbeat limit",
        &st.bodies,
    )
    .await
    {
        Ok(b) => b,
        Err((status, why)) => {
            c.malformed.fetch_add(1, Ordering::Relaxed);
            let r = error(status, why);
            return if status == StatusCode::SERVICE_UNAVAILABLE {
                busy(r)
            } else {
                r
            };
        }
    };
    let hb = match decode_heartbeat(&read.bytes) {
        Ok(h) => h,
        Err(Rejected::Malformed(why)) => {
            c.malformed.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_REQUEST, why);
        }
        Err(Rejected::Unprocessable(why)) => {
            c.unprocessable.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::UNPROCESSABLE_ENTITY, why);
        }
    };
    if !valid_node_name(&hb.node) || hb.digest.is_empty() || hb.digest.len() > 64 {
        c.unprocessable.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "heartbeat of node {:?}: the node name must be 1 to 253 characters of A-Z a-z 0-9 . _ - and the digest 1 to 64 characters",
                hb.node
            ),
        );
    }
    if let Err(r) = auth::push_for_node(&st, &ids, &hb.node) {
        return *r;
    }
    // The common case, answered from memory: the digest this process stored or refreshed.
    // Last seen is written to the store by the next flush (tasks::spawn_seen_flush).
    let outcome = if st.fleet.digest(&hb.node).is_some_and(|d| *d == *hb.digest) {
        let now = crate::state::now_ms();
        st.fleet.touch(&[(hb.node.clone(), now, 0)]);
        st.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hb.node.clone(), now);
        Ok(WriteOutcome::Beat { known: true })
    } else if !st.shared_store {
        // This process is the only writer: what it does not know is not stored.
        Ok(WriteOutcome::Beat { known: false })
    } else {
        // Another replica may have stored it within the last refresh: ask the store.
        let beat = Beat {
            node: hb.node.clone(),
            digest: hb.digest,
        };
        store(&st, Work::Heartbeat(beat)).await
    };
    match outcome {
        Ok(WriteOutcome::Beat { known: true }) | Ok(WriteOutcome::Stored) => {
            c.heartbeats.fetch_add(1, Ordering::Relaxed);
            with_protocol(json(
                StatusCode::OK,
                &HeartbeatReply {
                    full_report_required: false,
                    reason: None,
                },
                false,
            ))
        }
        Ok(WriteOutcome::Beat { known: false }) => {
            c.full_reports_requested.fetch_add(1, Ordering::Relaxed);
            with_protocol(json(
                StatusCode::OK,
                &HeartbeatReply {
                    full_report_required: true,
                    reason: Some(format!(
                        "digest unknown for node {}: send the full report",
                        hb.node
                    )),
                },
                false,
            ))
        }
        Err(e) => {
            c.store_errors.fetch_add(1, Ordering::Relaxed);
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("could not record the heartbeat: {e}"),
            )
        }
    }
}

fn unsupported(v: u32) -> String {
    format!("unsupported schema_version {v}: this aggregator reads {SCHEMA_VERSION}")
}

#[cfg(test)]
mod tests;
