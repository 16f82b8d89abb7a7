"""`${NAME}` references in the alert YAML, filled from the environment after parsing.

Secrets (webhook URLs, SMTP passwords) stay out of the file: `${GROUNDSWELL_SLACK_WEBHOOK_NORTH}` must
be set; `${NAME:-default}` falls back to `default` (an empty default turns an optional channel off).
Substitution runs on parsed string values, so a value cannot change the YAML's structure, and errors
name the key and the variable, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MissingVariable(ValueError):
    def __init__(self, where: str, name: str) -> None:
        super().__init__(f"{where}: environment variable {name} is not set")
        self.where = where
        self.name = name


def _path(parent: str, key: object) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def expand(tree: Any, env: Mapping[str, str], where: str = "") -> Any:
    """A copy of `tree` with every `${NAME}` in its string values replaced."""
    if isinstance(tree, str):

        def fill(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise MissingVariable(where or "alerts", name)

        return REFERENCE.sub(fill, tree)
    if isinstance(tree, Mapping):
        return {key: expand(value, env, _path(where, key)) for key, value in tree.items()}
    if isinstance(tree, list):
        return [expand(value, env, _path(where, i)) for i, value in enumerate(tree)]
    return tree
