"""Groundswell configuration: frozen settings from YAML and GROUNDSWELL_* variables, and the geography."""

from config.geography import Geography, GeographyError, PrecinctInfo
from config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Geography", "GeographyError", "PrecinctInfo", "Settings", "load_settings"]
