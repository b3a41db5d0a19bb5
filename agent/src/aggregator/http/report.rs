//! `POST /api/v1/reports`: authentication, the size limit, decoding and validation, then the
//! single writer. Everything is checked before anything is stored: a bad report never changes
//! state.

use super::{auth, error};
use crate::aggregator::fleet::Accepted;
use crate::aggregator::state::FleetState;
use crate::aggregator::writer::Incoming;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::{NodeReport, SCHEMA_VERSION};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// A node name the aggregator accepts: 1 to 253 characters of `A-Z a-z 0-9 . _ -` (a DNS name
/// or a Kubernetes node name).
pub fn valid_node_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a pushed body is refused before it reaches the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Not JSON, or not a report: 400.
    Malformed(String),
    /// A report this aggregator will not take (another schema, a bad node name): 422.
    Unprocessable(String),
}

/// Decodes and validates a pushed report (pure: the whole of the aggregator's input checking
/// after authentication and the size limit).
pub fn decode_report(bytes: &[u8]) -> Result<NodeReport, Rejected> {
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
            "node.name {:?} is not 1 to 253 characters of A-Z a-z 0-9 . _ -",
            report.node.name
        )));
    }
    Ok(report)
}

/// Everything is checked before anything is stored: a bad report never changes state.
pub async fn post_report(
    State(st): State<Arc<FleetState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let c = &st.counters;
    let reject = |counter: &AtomicU64, status: StatusCode, why: String| {
        counter.fetch_add(1, Ordering::Relaxed);
        error(status, why)
    };
    if let Some(token) = &st.token
        && let Err(why) = auth::check(&headers, &token.load())
    {
        let mut r = reject(&c.unauthorized, StatusCode::UNAUTHORIZED, why.into());
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, auth::CHALLENGE);
        return r;
    }
    let limit = st.config.max_report_bytes as usize;
    let too_large = || format!("report larger than max_report_bytes ({limit} bytes)");
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return reject(&c.too_large, StatusCode::PAYLOAD_TOO_LARGE, too_large());
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return reject(&c.too_large, StatusCode::PAYLOAD_TOO_LARGE, too_large()),
    };
    let report = match decode_report(&bytes) {
        Ok(r) => r,
        Err(Rejected::Malformed(why)) => return reject(&c.malformed, StatusCode::BAD_REQUEST, why),
        Err(Rejected::Unprocessable(why)) => {
            return reject(&c.unprocessable, StatusCode::UNPROCESSABLE_ENTITY, why);
        }
    };
    let (ack, done) = oneshot::channel();
    let incoming = Incoming {
        accepted: Accepted {
            report,
            json: Arc::from(&bytes[..]),
        },
        ack,
    };
    let stored = match st.writer.send(incoming).await {
        Ok(()) => done.await.unwrap_or_else(|_| Err("writer stopped".into())),
        Err(_) => Err("writer stopped".into()),
    };
    match stored {
        Ok(()) => {
            c.accepted.fetch_add(1, Ordering::Relaxed);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => reject(
            &c.store_errors,
            StatusCode::SERVICE_UNAVAILABLE,
            format!("could not store the report: {e}"),
        ),
    }
}

fn unsupported(v: u32) -> String {
    format!("unsupported schema_version {v}: this aggregator reads {SCHEMA_VERSION}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_checked() {
        assert!(valid_node_name("worker-17.dc1_a"));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name("a b"));
        assert!(!valid_node_name("../x/y"));
        assert!(!valid_node_name(&"a".repeat(254)));
    }
}
