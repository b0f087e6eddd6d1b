"""The wheel is the service: built from what the Dockerfile copies, it carries the SQL and the
migrations but no benchmark, and once installed in a fresh virtualenv outside the checkout it
migrates a database with nothing but DATABASE_URL set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from calendly_svc.store.db import migration_ids
from tests.conftest import _admin, with_database

ROOT = Path(__file__).resolve().parents[1]
# building (setuptools in pip's isolated build environment) and installing the dependencies
# take about half a minute on a warm pip cache
BUILD_SECONDS = 300


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; its stdout, or a failure showing its stderr."""
    result = subprocess.run(  # noqa: S603 - pip, venv and the installed CLI, all ours
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"{args[:4]} failed:\n{result.stderr[-3000:]}"
    return result.stdout


def _build_context(dest: Path) -> Path:
    """What the Dockerfile's build stage copies, copied to dest (links kept as links)."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for name in line.split()[1:-1]:
                source = ROOT / name
                if source.is_dir():
                    ignore = shutil.ignore_patterns("__pycache__")
                    shutil.copytree(source, dest / name, symlinks=True, ignore=ignore)
                else:
                    shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service's wheel, built outside the checkout the way the Dockerfile builds it."""
    context = _build_context(tmp_path_factory.mktemp("context"))
    dist = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, ".", cwd=context)
    [built] = dist.glob("calendly_svc-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv outside the checkout with the wheel and its dependencies installed."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", wheel, cwd=env_dir)
    return env_dir


@pytest.fixture
def empty_database(pg_server_dsn: str) -> Iterator[str]:
    """A database no migration has touched."""
    name = f"cs_wheel_{uuid.uuid4().hex[:12]}"
    _admin(pg_server_dsn, f'CREATE DATABASE "{name}"')
    yield with_database(pg_server_dsn, name)
    _admin(pg_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _shipped(names: list[str], folder: str) -> set[str]:
    """File names the wheel carries in one of the package's data folders."""
    prefix = f"calendly_svc/{folder}/"
    return {name.removeprefix(prefix) for name in names if name.startswith(prefix)}


@pytest.mark.timeout(BUILD_SECONDS)
def test_the_wheel_is_the_service_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert {"calendly_svc"} == tops
    assert [name for name in names if "bench" in name.lower()] == []
    assert {path.name for path in (ROOT / "sql").glob("*.sql")} == _shipped(names, "_sql")
    migrations = {path.name for path in (ROOT / "migrations").iterdir()}
    assert migrations == _shipped(names, "_migrations")
    assert "calendly_svc/__main__.py" in names


@pytest.mark.timeout(BUILD_SECONDS)
async def test_the_installed_wheel_migrates_with_only_database_url(
    installed: Path, empty_database: str, tmp_path: Path
) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DATABASE_URL": empty_database}
    where = _run(
        installed / "bin" / "python",
        "-c",
        "import calendly_svc; print(calendly_svc.__file__)",
        cwd=tmp_path,
        env=env,
    )
    _run(installed / "bin" / "calendly-svc", "migrate", cwd=tmp_path, env=env)
    conn = await asyncpg.connect(empty_database)
    try:
        applied = await conn.fetch("SELECT migration_id FROM _yoyo_migration")
        integrations = await conn.fetchval("SELECT count(*) FROM integrations")
    finally:
        await conn.close()
    assert Path(where.strip()).is_relative_to(installed)
    assert migration_ids() == {row["migration_id"] for row in applied}
    assert integrations == 0


# imports every service module in a fresh interpreter and prints the sandbox modules loaded
SERVICE_IMPORTS = """
import importlib, pathlib, sys
import calendly_svc
root = pathlib.Path(calendly_svc.__file__).parent
for path in sorted(root.rglob("*.py")):
    parts = path.relative_to(root.parent).with_suffix("").parts
    if parts[1] != "sandbox":
        importlib.import_module(".".join(parts).removesuffix(".__init__"))
print(sorted(name for name in sys.modules if name.startswith("calendly_svc.sandbox")))
"""


def test_no_service_module_imports_the_sandbox(tmp_path: Path) -> None:
    loaded = _run(sys.executable, "-c", SERVICE_IMPORTS, cwd=tmp_path)
    assert loaded.strip() == "[]"
