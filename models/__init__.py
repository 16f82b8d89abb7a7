"""Groundswell's models: pure Python/numpy, no Kafka or ClickHouse imports."""
