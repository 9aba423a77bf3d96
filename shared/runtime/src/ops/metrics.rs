//! One Prometheus registry per service, with its name as prefix, `build_info` and process metrics.
//!
//! Label values must come from a fixed set (reasons, outcomes), never from packet data: the
//! `*_vec` helpers take the allowed values up front and create every series at 0, so a
//! dashboard sees a counter before the first event.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Why a metric could not be registered (a duplicate or invalid name: a programming error).
#[derive(Debug, thiserror::Error)]
#[error("metric {name}: {source}")]
pub struct MetricsError {
    name: String,
    source: prometheus::Error,
}

/// A service's registry. Cheap to clone (the registry is shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    service: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry whose metric names start with `prefix_` (e.g. `capture_agent`), holding
    /// `PREFIX_build_info{version,service} 1` and the process collector (CPU, memory, fds).
    pub fn new(prefix: &str, service: &str, version: &str) -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(Some(prefix.to_string()), None).map_err(|source| {
            MetricsError {
                name: prefix.to_string(),
                source,
            }
        })?;
        let metrics = Metrics {
            registry,
            service: service.to_string(),
        };
        let build_info = metrics.gauge_vec(
            "build_info",
            "Always 1; labels say which build is running",
            &["version", "service"],
        )?;
        build_info.with_label_values(&[version, service]).set(1);
        #[cfg(target_os = "linux")]
        metrics.register(
            "process",
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        )?;
        Ok(metrics)
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn counter(&self, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
        let counter = IntCounter::new(name, help).map_err(|source| err(name, source))?;
        self.register(name, Box::new(counter.clone()))?;
        Ok(counter)
    }

    pub fn gauge(&self, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
        let gauge = IntGauge::new(name, help).map_err(|source| err(name, source))?;
        self.register(name, Box::new(gauge.clone()))?;
        Ok(gauge)
    }

    /// A counter with one label whose values are fixed: every series starts at 0.
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        label: &str,
        values: &[&str],
    ) -> Result<IntCounterVec, MetricsError> {
        let vec = IntCounterVec::new(Opts::new(name, help), &[label])
            .map_err(|source| err(name, source))?;
        for value in values {
            vec.with_label_values(&[*value]);
        }
        self.register(name, Box::new(vec.clone()))?;
        Ok(vec)
    }

    pub fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, MetricsError> {
        let vec =
            IntGaugeVec::new(Opts::new(name, help), labels).map_err(|source| err(name, source))?;
        self.register(name, Box::new(vec.clone()))?;
        Ok(vec)
    }

    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: Vec<f64>,
    ) -> Result<Histogram, MetricsError> {
        let histogram = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
            .map_err(|source| err(name, source))?;
        self.register(name, Box::new(histogram.clone()))?;
        Ok(histogram)
    }

    /// Registers any collector (for metric kinds the helpers above do not cover).
    pub fn register(&self, name: &str, collector: Box<dyn Collector>) -> Result<(), MetricsError> {
        self.registry
            .register(collector)
            .map_err(|source| err(name, source))
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding well-formed families into a Vec does not fail.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

fn err(name: &str, source: prometheus::Error) -> MetricsError {
    MetricsError {
        name: name.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_build_info_and_preinitialised_labels() {
        let metrics = Metrics::new("unit_svc", "unit-svc", "1.2.3").unwrap();
        let drops = metrics
            .counter_vec("drops_total", "drops", "reason", &["buffer_full", "other"])
            .unwrap();
        drops.with_label_values(&["buffer_full"]).inc_by(3);
        let text = metrics.render();
        assert!(text.contains("unit_svc_build_info{service=\"unit-svc\",version=\"1.2.3\"} 1"));
        assert!(text.contains("unit_svc_drops_total{reason=\"buffer_full\"} 3"));
        assert!(text.contains("unit_svc_drops_total{reason=\"other\"} 0"));
        assert!(metrics.counter("drops_total", "again").is_err());
    }
}
