//! Prometheus metrics, served at `/metrics`. Labels are codes and provider ids only: never a
//! value, a host or a path (which could carry one).

use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::audit_writer::AuditWriter;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `ok` or the error code.
    pub outcome: String,
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~54 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
}

fn injection_histogram() -> Histogram {
    // 1 µs to ~16 ms.
    Histogram::new(exponential_buckets(0.000_001, 2.0, 15))
}

type Histograms = Family<ProviderLabels, Histogram, fn() -> Histogram>;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_duration: Histograms,
    upstream_duration: Histograms,
    injection_duration: Histograms,
    audit_queue: Gauge,
    audit_written: Counter,
    audit_failures: Counter,
    audit_index_errors: Counter,
    provider_failures: Family<ProviderLabels, Counter>,
    forward_tunnels: Counter,
    forward_passthroughs: Counter,
    forward_refused: Counter,
    limit_leases: Counter,
    token_requests: Counter,
    approvals: Family<OutcomeLabels, Counter>,
    approvals_pending: Gauge,
    audit_archived: Counter,
    audit_archive_errors: Counter,
    audit_archive_last_pass: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("credgate");
        let calls = Family::<CallLabels, Counter>::default();
        let call_duration: Histograms = Family::new_with_constructor(latency_histogram);
        let upstream_duration: Histograms = Family::new_with_constructor(latency_histogram);
        let injection_duration: Histograms = Family::new_with_constructor(injection_histogram);
        let audit_queue = Gauge::default();
        let audit_written = Counter::default();
        let audit_failures = Counter::default();
        let audit_index_errors = Counter::default();
        let provider_failures = Family::<ProviderLabels, Counter>::default();
        let forward_tunnels = Counter::default();
        let forward_passthroughs = Counter::default();
        let forward_refused = Counter::default();
        let limit_leases = Counter::default();
        let token_requests = Counter::default();
        registry.register(
            "token_requests",
            "Token requests minting types made (one per secret version and expiry, however many calls wait)",
            token_requests.clone(),
        );
        let approvals = Family::<OutcomeLabels, Counter>::default();
        let approvals_pending = Gauge::default();
        let audit_archived = Counter::default();
        let audit_archive_errors = Counter::default();
        let audit_archive_last_pass = Gauge::default();
        registry.register(
            "audit_archive_last_pass_timestamp_seconds",
            "When this process last ran an archiving pass to its end (checked the newest seal, archived, sealed); alert when every replica's is old",
            audit_archive_last_pass.clone(),
        );
        registry.register(
            "audit_archived_records",
            "Audit records moved into archive files (--audit-retain-days) by this process",
            audit_archived.clone(),
        );
        registry.register(
            "audit_archive_errors",
            "Archiving passes that stopped on an error (each is retried at the next pass)",
            audit_archive_errors.clone(),
        );
        registry.register(
            "approvals",
            "Calls held for approval (requested), and what became of them: approved, denied, expired, executed, failed",
            approvals.clone(),
        );
        registry.register(
            "approvals_pending",
            "Calls waiting for an operator's approval (all replicas; refreshed every few seconds)",
            approvals_pending.clone(),
        );
        registry.register(
            "limit_leases",
            "Slices of grant rate limits and quotas taken from the database (the only limit work that reaches it)",
            limit_leases.clone(),
        );
        registry.register(
            "forward_tunnels",
            "Forward-proxy tunnels intercepted (TLS terminated with credgate's CA); their requests count in calls",
            forward_tunnels.clone(),
        );
        registry.register(
            "forward_passthroughs",
            "Forward-proxy tunnels passed through untouched (--proxy-passthrough)",
            forward_passthroughs.clone(),
        );
        registry.register(
            "forward_refused",
            "Forward-proxy tunnels and requests refused before any TLS (no grant allows the host)",
            forward_refused.clone(),
        );
        registry.register(
            "calls",
            "Data-plane calls by outcome (ok or error code) and provider",
            calls.clone(),
        );
        registry.register(
            "call_duration_seconds",
            "Whole data-plane call, to the response headers",
            call_duration.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Upstream part of a call, to its response headers",
            upstream_duration.clone(),
        );
        registry.register(
            "injection_duration_seconds",
            "Time to decrypt and inject a credential",
            injection_duration.clone(),
        );
        registry.register(
            "audit_queue_depth",
            "Audit events accepted and not yet indexed into the database",
            audit_queue.clone(),
        );
        registry.register(
            "audit_events_written",
            "Audit events indexed into the database",
            audit_written.clone(),
        );
        registry.register(
            "audit_index_errors",
            "Attempts to index journaled audit events that the database refused (each is retried)",
            audit_index_errors.clone(),
        );
        registry.register(
            "audit_failures",
            "Audit events refused (queue full or closed) or that could not be journaled",
            audit_failures.clone(),
        );
        registry.register(
            "provider_failures",
            "Injections that failed inside a provider",
            provider_failures.clone(),
        );
        Self {
            registry,
            calls,
            call_duration,
            upstream_duration,
            injection_duration,
            audit_queue,
            audit_written,
            audit_failures,
            audit_index_errors,
            provider_failures,
            forward_tunnels,
            forward_passthroughs,
            forward_refused,
            limit_leases,
            token_requests,
            approvals,
            approvals_pending,
            audit_archived,
            audit_archive_errors,
            audit_archive_last_pass,
        }
    }

    /// Records moved into archive files, and passes that failed.
    pub fn audit_archive(&self, records: u64, failed: bool) {
        self.audit_archived.inc_by(records);
        if failed {
            self.audit_archive_errors.inc();
        }
    }

    /// An archiving pass ran to its end on this process, at `at` (Unix seconds).
    pub fn audit_archive_pass(&self, at: i64) {
        self.audit_archive_last_pass.set(at);
    }

    /// One step of a held call: `requested`, `approved`, `denied`, `expired`, `executed`,
    /// `failed`.
    pub fn approval(&self, outcome: &str) {
        self.approvals
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn approvals_pending(&self, count: i64) {
        self.approvals_pending.set(count);
    }

    /// The counter the limiter adds its leases to.
    pub fn limit_leases(&self) -> Counter {
        self.limit_leases.clone()
    }

    pub fn token_requests(&self) -> Counter {
        self.token_requests.clone()
    }

    pub fn forward_tunnel(&self) {
        self.forward_tunnels.inc();
    }

    pub fn forward_passthrough(&self) {
        self.forward_passthroughs.inc();
    }

    pub fn forward_refused(&self) {
        self.forward_refused.inc();
    }

    pub fn call(&self, outcome: &str, provider: &str, duration: Duration) {
        let provider = provider.to_owned();
        self.calls
            .get_or_create(&CallLabels {
                outcome: outcome.to_owned(),
                provider: provider.clone(),
            })
            .inc();
        self.call_duration
            .get_or_create(&ProviderLabels { provider })
            .observe(duration.as_secs_f64());
    }

    pub fn upstream(&self, provider: &str, duration: Duration) {
        self.upstream_duration
            .get_or_create(&ProviderLabels {
                provider: provider.to_owned(),
            })
            .observe(duration.as_secs_f64());
    }

    pub fn injection(&self, provider: &str, duration: Duration) {
        self.injection_duration
            .get_or_create(&ProviderLabels {
                provider: provider.to_owned(),
            })
            .observe(duration.as_secs_f64());
    }

    pub fn provider_failure(&self, provider: &str) {
        self.provider_failures
            .get_or_create(&ProviderLabels {
                provider: provider.to_owned(),
            })
            .inc();
    }

    /// The text exposition, with the audit writer's figures read now.
    pub fn render(&self, audit: &AuditWriter) -> String {
        let stats = audit.stats();
        self.audit_queue.set(stats.queued.load(Ordering::Relaxed) as i64);
        let written = stats.written.load(Ordering::Relaxed);
        let failed = stats.failed.load(Ordering::Relaxed);
        // Counters only go up: top them up to the writer's totals.
        self.audit_written
            .inc_by(written.saturating_sub(self.audit_written.get()));
        self.audit_failures
            .inc_by(failed.saturating_sub(self.audit_failures.get()));
        let index_errors = stats.index_errors.load(Ordering::Relaxed);
        self.audit_index_errors
            .inc_by(index_errors.saturating_sub(self.audit_index_errors.get()));
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
