"""Prometheus metrics for the pipeline. Labels are topics, partitions, reasons, tables and linking's
record kinds, statuses and methods (fixed sets): never PII."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Finer at the low end than the pipeline's: the dashboard's API target is p95 <= 100 ms.
HTTP_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("groundswell_events_total", "Events accepted into raw tables", ["topic"], registry=r)
        self.rejected = Counter(
            "groundswell_rejected_events_total", "Events rejected to the DLQ", ["topic", "reason"], registry=r
        )
        self.batches = Counter("groundswell_batches_total", "Batches inserted", ["topic"], registry=r)
        self.insert_retries = Counter(
            "groundswell_insert_retries_total", "Insert attempts that failed and were retried", registry=r
        )
        self.insert_seconds = Histogram(
            "groundswell_batch_insert_seconds", "Time to insert one batch (raw + rejected)", ["topic"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.cycle_seconds = Histogram(
            "groundswell_flush_cycle_seconds", "BEFORE mark to offset commit, one flush cycle",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.freshness = Histogram(
            "groundswell_freshness_seconds",
            "Produced (Kafka timestamp) to visible in aggregates, oldest event of each batch",
            ["topic"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "groundswell_consumer_lag", "High watermark minus next offset", ["topic", "partition"], registry=r
        )
        self.assigned = Gauge("groundswell_assigned_partitions", "Partitions this worker owns", registry=r)
        self.replayed_batches = Counter(
            "groundswell_replayed_batches_total", "Unconfirmed batches rebuilt after a restart", registry=r
        )
        self.trend_windows = Counter(
            "groundswell_trend_windows_total", "Hourly windows evaluated by the trend agent", registry=r
        )
        self.trend_flags = Counter(
            "groundswell_trend_flags_total", "Trend flags raised, updated or closed", ["metric", "level", "status"],
            registry=r,
        )  # fmt: skip
        self.trend_tick_seconds = Histogram(
            "groundswell_trend_tick_seconds", "One trend agent tick", buckets=LATENCY_BUCKETS, registry=r
        )
        self.voters_scored = Counter("groundswell_voters_scored_total", "Voters scored in the stream", registry=r)
        self.labels_learned = Counter(
            "groundswell_labels_learned_total", "Canvass IDs the online models learned from", registry=r
        )
        self.scoring_seconds = Histogram(
            "groundswell_scoring_batch_seconds", "One scoring batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.model_metric = Gauge(
            "groundswell_model_metric",
            "Prequential metrics of the live models over their last window of IDs (scope: all, held_out, per region)",
            ["alias", "scope", "metric"], registry=r,
        )  # fmt: skip
        self.bulk_rescore_rate = Gauge(
            "groundswell_bulk_rescore_voters_per_second", "The last bulk rescore's rate", registry=r
        )
        self.alerts_planned = Counter(
            "groundswell_alerts_planned_total", "Alerts routed and stored for delivery", registry=r
        )
        # Labels are route patterns ("/api/v1/alerts/{alert_id}/ack"), never concrete paths: bounded.
        self.http_seconds = Histogram(
            "groundswell_http_request_seconds", "HTTP request latency by route pattern, method and status class",
            ["route", "method", "status"], buckets=HTTP_BUCKETS, registry=r,
        )  # fmt: skip
        # Linking (streams/linking.py): labels are the record kind (signup | email), the status
        # (matched | ambiguous | unmatched) and the method (email, phone, ..., review, supplied, none).
        self.linked_records = Counter(
            "groundswell_linked_records_total", "Person-record decisions written by the linking agent",
            ["kind", "status", "method"], registry=r,
        )  # fmt: skip
        self.linking_batch_seconds = Histogram(
            "groundswell_linking_batch_seconds", "One linking tick that read events or applied reviews",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.link_review_queue = Gauge(
            "groundswell_link_review_queue", "Ambiguous links awaiting a reviewer's decision", registry=r
        )
