"""Groundswell's stream side: the Faust worker, event schemas and validation, ingest, simulator, CLI."""
