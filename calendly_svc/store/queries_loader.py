"""Parses `-- name: x` blocks out of sql/*.sql (shipped as calendly_svc/_sql), once."""

from __future__ import annotations

import functools
import re
from importlib import resources
from importlib.resources.abc import Traversable

SQL_DIR: Traversable = resources.files("calendly_svc") / "_sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_queries(text: str, source: str = "<string>") -> dict[str, str]:
    """Split one file's text into {name: sql}."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{source}: query {name!r} defined twice")
        queries[name] = body.strip()
    return queries


@functools.cache
def load_queries(directory: Traversable = SQL_DIR) -> dict[str, str]:
    """Every named query under the directory; a name may appear only once."""
    queries: dict[str, str] = {}
    files = [path for path in directory.iterdir() if path.name.endswith(".sql")]
    for path in sorted(files, key=lambda path: path.name):
        for name, sql in parse_queries(path.read_text(), path.name).items():
            if name in queries:
                raise ValueError(f"{path.name}: query {name!r} already defined elsewhere")
            queries[name] = sql
    return queries
