"""Groundswell's sinks: ClickHouse (schema, exactly-once writer, queries) and Prometheus metrics."""
