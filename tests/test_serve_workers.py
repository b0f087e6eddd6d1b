"""`serve --workers N`: N processes share one port; SIGTERM stops them all, and a killed
supervisor stops them too; bad uses exit 2."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import free_port
from tests.test_shutdown import _ready, _start

Running = tuple[asyncio.subprocess.Process, list[int]]  # the supervisor, its children's pids


def _children(pid: int) -> list[int]:
    """The pids of a process's children (none once it is gone)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in path.read_text().split()]
    except FileNotFoundError:
        return []


def _listening(pid: int) -> bool:
    """Whether a process holds a listening TCP socket (it answers on the shared port)."""
    inodes = {
        os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
        for fd in os.listdir(f"/proc/{pid}/fd")
        if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")
    }
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return True
    return False


async def test_workers_share_the_port_and_stop_together(database_url: str, sandbox: Any) -> None:
    port = free_port()
    proc = await _start(database_url, sandbox.url, port, "--workers", "2")
    try:
        async with aiohttp.ClientSession() as session:
            await _ready(session, f"http://127.0.0.1:{port}")
            for _ in range(40):
                children = _children(proc.pid)
                if len(children) == 2 and all(_listening(child) for child in children):
                    break
                await asyncio.sleep(0.1)
            statuses = []
            for _ in range(20):
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    statuses.append(resp.status)
        assert [_listening(child) for child in children] == [True, True]
        assert statuses == [200] * 20
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert [_gone(child) for child in children] == [True, True]
    finally:
        await _kill(proc)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL a supervisor left running by a failed test, and its children first: they hold
    its stderr pipe, and `wait()` returns only once every holder has closed it."""
    if proc.returncode is None:
        for child in _children(proc.pid):
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                os.kill(child, signal.SIGKILL)
        proc.kill()
        await asyncio.wait_for(proc.wait(), 30)


@contextlib.asynccontextmanager
async def _two_workers(database_url: str, sandbox_url: str) -> AsyncIterator[Running]:
    """`serve --workers 2`, ready, with its two children's pids; killed after the block."""
    port = free_port()
    proc = await _start(database_url, sandbox_url, port, "--workers", "2")
    try:
        async with aiohttp.ClientSession() as session:
            await _ready(session, f"http://127.0.0.1:{port}")
        for _ in range(40):
            if len(children := _children(proc.pid)) == 2:
                break
            await asyncio.sleep(0.1)
        yield proc, children
    finally:
        await _kill(proc)


async def test_a_worker_that_dies_stops_the_rest(database_url: str, sandbox: Any) -> None:
    async with _two_workers(database_url, sandbox.url) as (proc, children):
        os.kill(children[0], signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 30) == 128 + signal.SIGKILL
        assert _gone(children[1])


def _gone(pid: int) -> bool:
    """Whether a process has exited (reaped, or a zombie waiting to be)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def _exit_of(*args: str, **env: str) -> tuple[int, str]:
    """Run the CLI; its exit status and standard error."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "calendly_svc", *args,
        env={"PATH": os.environ["PATH"], **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, err.decode()


async def test_workers_below_one_exit_2(database_url: str, sandbox: Any) -> None:
    port = free_port()
    proc = await _start(database_url, sandbox.url, port, "--workers", "0")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert (
        proc.returncode,
        err.decode()[-50:],
    ) == (2, "configuration error: --workers must be at least 1\n")


async def test_workers_refused_in_dev_mode(tmp_path: Path) -> None:
    code, err = await _exit_of("serve", "--workers", "2", CALENDLY_SVC_DEV="1", HOME=str(tmp_path))
    assert (
        code,
        err.strip().splitlines()[-1],
    ) == (2, "configuration error: --workers needs a configured deployment, not dev mode")


async def test_workers_stop_when_their_supervisor_is_killed(
    database_url: str, sandbox: Any
) -> None:
    async with _two_workers(database_url, sandbox.url) as (proc, children):
        proc.kill()  # SIGKILL: the supervisor cannot stop its children itself
        await asyncio.wait_for(proc.wait(), 30)  # returns once the children closed its stderr
        for _ in range(100):
            if all(_gone(child) for child in children):
                break
            await asyncio.sleep(0.1)
        assert [_gone(child) for child in children] == [True, True]
