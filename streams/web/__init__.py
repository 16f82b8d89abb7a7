"""The live dashboard served by the worker: static page, view API, server-sent events (docs/dashboard.md)."""
