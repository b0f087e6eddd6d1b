"""Every metric the alert rules and the Grafana dashboard query is one the running service
exports (names from a live /metrics scrape), and the label values they match exist."""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

from tests.conftest import Api, Sandbox
from tests.test_sync import _missed, sync_now

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "calendly-svc.json"
# Prometheus' own series, not the service's
NOT_OURS = frozenset({"up"})
KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
     "offset", "bool", "inf", "nan"}
)  # fmt: skip
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_SUFFIXES = {
    "counter": ("", "_total"),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (not functions, keywords or label names)."""
    bare = _GROUPING.sub(" ", _BRACES.sub(" ", _STRING.sub('""', expr)))
    return {name for name in _IDENT.findall(bare) if name.lower() not in KEYWORDS}


def matched_values(expr: str) -> set[tuple[str, str, str]]:
    """(metric, label, value) for each `=` matcher and each plain alternative of an `=~` one."""
    found = set()
    for metric, body in _SELECTOR.findall(expr):
        for label, op, value in _MATCHER.findall(body):
            if op == "=" or (op == "=~" and re.fullmatch(r"[\w|]+", value)):
                found |= {(metric, label, v) for v in value.split("|")}
    return found


def exported(exposition: str) -> tuple[set[str], dict[tuple[str, str], set[str]]]:
    """Sample names each `# TYPE` line stands for, and the label values of the samples."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        names |= {name + suffix for suffix in _SUFFIXES.get(kind, ("",))}
    values: dict[tuple[str, str], set[str]] = defaultdict(set)
    for metric, body in _SELECTOR.findall(exposition):
        for label, _, value in _MATCHER.findall(body):
            values[metric, label].add(value)
    return names, values


def queries() -> list[str]:
    """Every expression in the rules and every target of the dashboard."""
    rules = yaml.safe_load(RULES.read_text())["groups"]
    exprs = [str(rule["expr"]) for group in rules for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return exprs + [t["expr"] for p in panels for t in p.get("targets", [])]


def source_literals() -> str:
    """The service's code and SQL, where a label value it sets must appear as a literal."""
    files = [*(ROOT / "calendly_svc").rglob("*.py"), *(ROOT / "sql").glob("*.sql")]
    return "\n".join(path.read_text() for path in files)


async def _exposition(api: Api) -> str:
    """A live scrape."""
    resp = await api.client.get("/metrics")
    assert resp.status == 200
    return await resp.text()


def test_the_scan_finds_names_and_skips_the_rest() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route=~"x|y"}[5m]))) '
        '/ on(job) b_total offset 1h > bool 0 unless up{job="calendly-svc"} or c'
    )
    assert {"a_bucket", "b_total", "up", "c"} == metric_names(expr)
    assert {("a_bucket", "route", "x"), ("a_bucket", "route", "y"), ("up", "job", "calendly-svc")} \
        == matched_values(expr)  # fmt: skip


async def test_rules_and_dashboard_query_only_exported_metrics(api: Api) -> None:
    names, _ = exported(await _exposition(api))
    used = set().union(*(metric_names(q) for q in queries()))
    assert {"calendly_svc_ready", "calendly_svc_http_request_duration_seconds_bucket"} <= used
    assert set() == used - names - NOT_OURS


async def test_the_label_values_matched_exist(api: Api) -> None:
    _, values = exported(await _exposition(api))
    code = source_literals()
    matched = set().union(*(matched_values(q) for q in queries()))
    missing = {
        (metric, label, value)
        for metric, label, value in matched
        if metric not in NOT_OURS
        and value not in values.get((metric, label), set())
        and f'"{value}"' not in code
        and f"'{value}'" not in code
    }
    assert set() == missing


async def test_ready_gauge_follows_readyz(start_service: Callable[..., Awaitable[Api]]) -> None:
    from calendly_svc.keys import DB_POOL

    api = await start_service(probe_cache_seconds=0.2)
    before = await _exposition(api)
    await api.client.server.app[DB_POOL].close()
    await asyncio.sleep(0.3)
    readyz = await api.client.get("/readyz")
    after = await _exposition(api)
    ready = re.compile(r"^calendly_svc_ready (\S+)$", re.M)
    assert (ready.findall(before), readyz.status, ready.findall(after)) == (["1.0"], 503, ["0.0"])


async def test_repairs_are_counted_by_trigger(api: Api, control: Sandbox) -> None:
    await api.connect()
    await _missed(control, 3)
    first = await sync_now(api)
    second = await sync_now(api)
    repaired = re.compile(r'^calendly_svc_sync_repaired_total\{trigger="(\w+)"\} (\S+)$', re.M)
    found = dict(repaired.findall(await _exposition(api)))
    assert (
        (first["repaired"], second["repaired"]),
        found,
    ) == ((3, 0), {"initial": "0.0", "manual": "3.0"})


def test_the_dashboard_imports_with_a_prometheus_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    sources = {t["datasource"]["uid"] for p in panels for t in p.get("targets", [])} | {
        p["datasource"]["uid"] for p in panels if "datasource" in p
    }
    ids = [p["id"] for p in panels]
    assert (["DS_PROMETHEUS"], {"${DS_PROMETHEUS}"}, len(ids)) == (
        [i["name"] for i in dashboard["__inputs"]],
        sources,
        len(set(ids)),
    )
