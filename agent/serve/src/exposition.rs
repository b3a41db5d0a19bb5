//! The Prometheus exposition both servers speak: [`MetricsFormat`] (one `Accept` negotiation),
//! [`family`] (one metric family of constant samples, gauge or counter) and [`encode`] (a
//! collector through prometheus-client's encoder for the negotiated format).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The two Prometheus exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    /// The classic text format, version 0.0.4.
    Text,
    /// OpenMetrics 1.0 text (ends with `# EOF`).
    OpenMetrics,
}

impl MetricsFormat {
    pub const CONTENT_TYPE_TEXT: &'static str = "text/plain; version=0.0.4; charset=utf-8";
    pub const CONTENT_TYPE_OPENMETRICS: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";

    pub fn content_type(self) -> &'static str {
        match self {
            MetricsFormat::Text => Self::CONTENT_TYPE_TEXT,
            MetricsFormat::OpenMetrics => Self::CONTENT_TYPE_OPENMETRICS,
        }
    }

    /// The format an `Accept` header asks for (RFC 9110, `Accept`): OpenMetrics when its
    /// media range carries a higher q-value than every range that matches the classic text
    /// format (`text/plain`, `text/*`, `*/*`); a range with `q=0` is "not acceptable". Ties, no
    /// header and unparsable headers get the classic text, which every scraper reads.
    pub fn negotiate(accept: Option<&str>) -> MetricsFormat {
        let Some(accept) = accept else {
            return MetricsFormat::Text;
        };
        let mut om: Option<f32> = None;
        let mut text: Option<f32> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in parts {
                if let Some((k, v)) = p.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q = v.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
                }
            }
            let slot = match media.as_str() {
                "application/openmetrics-text" => &mut om,
                "text/plain" | "text/*" | "*/*" => &mut text,
                _ => continue,
            };
            // Prometheus lists one range per OpenMetrics version: the best of them counts.
            *slot = Some(slot.map_or(q, |prev: f32| prev.max(q)));
        }
        match om {
            Some(q) if q > 0.0 && q > text.unwrap_or(0.0) => MetricsFormat::OpenMetrics,
            _ => MetricsFormat::Text,
        }
    }
}

/// The labels of one sample.
pub type Labels = Vec<(&'static str, String)>;

/// A sample value: counts stay integers in the text (`3`), measurements are floats (`0.25`).
pub trait SampleValue: Copy {
    fn encode_as(self, kind: MetricType, m: MetricEncoder) -> std::fmt::Result;
}

impl SampleValue for f64 {
    fn encode_as(self, kind: MetricType, m: MetricEncoder) -> std::fmt::Result {
        match kind {
            MetricType::Counter => ConstCounter::new(self).encode(m),
            _ => ConstGauge::new(self).encode(m),
        }
    }
}

impl SampleValue for u64 {
    fn encode_as(self, kind: MetricType, m: MetricEncoder) -> std::fmt::Result {
        match kind {
            MetricType::Counter => ConstCounter::new(self).encode(m),
            _ => ConstGauge::new(i64::try_from(self).unwrap_or(i64::MAX)).encode(m),
        }
    }
}

/// One family: its descriptor, then each sample (a lone unlabelled sample as the bare metric).
/// A counter's `name` is without `_total` (the encoder adds it).
pub fn family<V: SampleValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels, V)>,
) -> std::fmt::Result {
    let samples: Vec<_> = samples.into_iter().collect();
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    match samples.as_slice() {
        [(labels, v)] if labels.is_empty() => v.encode_as(kind, m),
        _ => {
            for (labels, v) in &samples {
                v.encode_as(kind, m.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

/// Encodes `collector` with prometheus-client's own encoder for `format`.
pub fn encode(collector: Box<dyn Collector>, format: MetricsFormat, capacity: usize) -> String {
    let mut registry = Registry::default();
    registry.register_collector(collector);
    let mut out = String::with_capacity(capacity);
    // Writing into a String cannot fail.
    let _ = match format {
        MetricsFormat::OpenMetrics => {
            prometheus_client::encoding::text::encode(&mut out, &registry)
        }
        MetricsFormat::Text => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        }
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tie between OpenMetrics and the text format gets the text, which every scraper reads.
    #[test]
    fn accept_negotiation_reads_q_values() {
        use MetricsFormat::*;
        let n = |a| MetricsFormat::negotiate(Some(a));
        assert_eq!(
            n("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            OpenMetrics
        );
        // What Prometheus 2.x/3.x sends.
        assert_eq!(
            n(
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
               application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
               text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
            ),
            OpenMetrics
        );
        assert_eq!(n("application/openmetrics-text;q=0"), Text);
        assert_eq!(n("application/openmetrics-text; q=0.0, text/plain"), Text);
        assert_eq!(
            n("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
            Text
        );
        assert_eq!(n("APPLICATION/OpenMetrics-Text"), OpenMetrics);
        assert_eq!(n("application/openmetrics-text;q=bogus"), Text);
        assert_eq!(n("text/plain"), Text);
        assert_eq!(n("*/*"), Text);
        assert_eq!(n(""), Text);
        assert_eq!(n("application/openmetrics-text, text/plain"), Text);
        assert_eq!(MetricsFormat::negotiate(None), Text);
    }
}
