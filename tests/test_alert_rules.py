"""The alert rules (deploy/prometheus) pass promtool's checks and their unit tests, and each one
has a severity, a summary, a description, a runbook section and a firing and a quiet test case."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "alerts_test.yml"
RUNBOOK = ROOT / "docs" / "operations.md"


def _rules() -> list[dict[str, Any]]:
    """Every alerting rule in alerts.yml."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def promtool() -> str:
    """PROMTOOL, the Makefile's .venv/tools/promtool, or one on PATH; skip without (fail in CI)."""
    for candidate in (os.environ.get("PROMTOOL"), str(ROOT / ".venv" / "tools" / "promtool"),
                      shutil.which("promtool")):  # fmt: skip
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = (
        "promtool not found: `make test` unpacks it into .venv/tools/promtool from Debian's "
        "prometheus package (apt-get download prometheus), which failed or was not run here; "
        "or set PROMTOOL=/path/to/promtool"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the alert rule tests: {reason}")
    pytest.skip(reason)


def _run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """promtool, from the rules' directory (the rule tests name alerts.yml relative to it)."""
    return subprocess.run(  # noqa: S603 (a fixed binary and our own arguments)
        [promtool, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=50, check=False
    )


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", RULES.name)
    assert (0, f"SUCCESS: {len(_rules())} rules found") == (
        result.returncode,
        result.stdout.strip().splitlines()[-1].strip(),
    ), result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass(promtool: str) -> None:
    result = _run(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_checks_the_example_config(promtool: str) -> None:
    result = _run(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def _github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings (lowercase, punctuation dropped, '-' for ' ')."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_alert_is_labelled_annotated_and_has_a_runbook_section() -> None:
    anchors = _github_anchors(RUNBOOK.read_text())
    problems = []
    for rule in _rules():
        name, notes = rule["alert"], rule.get("annotations", {})
        if rule.get("labels", {}).get("severity") not in {"warning", "critical"}:
            problems.append(f"{name}: severity")
        problems += [f"{name}: {key}" for key in ("summary", "description") if not notes.get(key)]
        target, _, anchor = notes.get("runbook_url", "").partition("#")
        if (RULES_DIR / target).resolve() != RUNBOOK or anchor != name.lower():
            problems.append(f"{name}: runbook_url {notes.get('runbook_url')!r}")
        elif anchor not in anchors:
            problems.append(f"{name}: no section #{anchor} in docs/operations.md")
    assert problems == []


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    evals = [e for case in cases for e in case["alert_rule_test"]]
    fired = {e["alertname"] for e in evals if e["exp_alerts"]}
    quiet = {e["alertname"] for e in evals if not e["exp_alerts"]}
    names = {rule["alert"] for rule in _rules()}
    assert (names, names) == (fired, quiet)
