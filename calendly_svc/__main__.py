"""Command line: serve | migrate | sandbox."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from pathlib import Path
from typing import TypeVar

import structlog
from aiohttp import web

from calendly_svc.app import create_app
from calendly_svc.devenv import DevPlan, dev_mode, prepare_dev_environment
from calendly_svc.logging import configure_logging
from calendly_svc.settings import ConfigError, DatabaseSettings, KeySettings, Settings, load
from calendly_svc.store.db import apply_migrations
from calendly_svc.worker.engine import first_completed

log = structlog.get_logger("calendly_svc")
# each command reads only the settings it uses: migrate the database, rotate-keys the keys too
CommandSettings = TypeVar("CommandSettings", DatabaseSettings, KeySettings, Settings)
DATA_DIR = Path(".data")


def _parser() -> argparse.ArgumentParser:
    """The CLI's arguments."""
    parser = argparse.ArgumentParser(prog="python -m calendly_svc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="apply migrations, then serve the HTTP API")
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    serve.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="N processes sharing the port (SO_REUSEPORT), e.g. one per core; default 1",
    )  # fmt: skip
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--supervisor", type=int, default=None, help=argparse.SUPPRESS)
    sub.add_parser("migrate", help="apply pending database migrations and exit")
    sub.add_parser(
        "rotate-keys",
        help="re-encrypt every stored secret under the first TOKEN_ENCRYPTION_KEY",
    )
    sub.add_parser(
        "worker", help="run only the background worker (no HTTP), e.g. beside API-only replicas"
    )
    sandbox = sub.add_parser("sandbox", help="run the Calendly sandbox emulator on its own")
    sandbox.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    sandbox.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8081")))
    sandbox.add_argument(
        "--public-url",
        default=os.environ.get("SANDBOX_PUBLIC_URL"),
        help="base of every URI the sandbox emits, e.g. http://sandbox:8081 behind compose or a"
        " proxy (default SANDBOX_PUBLIC_URL, else its own URL with 0.0.0.0 as 127.0.0.1)",
    )
    return parser


def _settings_or_exit(kind: type[CommandSettings], plan: DevPlan) -> CommandSettings:
    """The settings a command uses, or one clear line naming what is wrong and exit status 2."""
    try:
        settings = load(kind)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    for note in plan.notes:
        log.info("dev_mode", detail=note)
    return settings


async def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


SUPERVISOR_CHECK_SECONDS = 1.0


async def _supervisor_gone(supervisor: int) -> None:
    """Return once the `serve --workers` process that started this one is gone (this one is then
    re-parented): a child stops with its supervisor, even one that was SIGKILLed."""
    # nothing portable signals a parent's exit: poll for the re-parenting
    while os.getppid() == supervisor:  # noqa: ASYNC110
        await asyncio.sleep(SUPERVISOR_CHECK_SECONDS)


async def _until_stopped(supervisor: int | None) -> None:
    """Block until SIGINT or SIGTERM, or until the supervisor (if any) is gone."""
    waits = [_wait_for_signal()]
    if supervisor is not None:
        waits.append(_supervisor_gone(supervisor))
    await first_completed(*waits)


async def _serve(
    settings: Settings, plan: DevPlan, migrate: bool, listen: bool = True, reuse_port: bool = False,
    supervisor: int | None = None,
) -> None:  # fmt: skip
    """Run until a signal arrives; without `listen` only the app's lifecycle runs (the pool,
    the HTTP client and the worker), for worker-only replicas."""
    if migrate:
        await apply_migrations(settings.database_url)
    async with contextlib.AsyncExitStack() as stack:
        if plan.use_sandbox:
            await stack.enter_async_context(_sandbox(settings))
        runner = web.AppRunner(
            create_app(settings),
            handle_signals=False,
            access_log=None,  # each request is logged (or counted) by request_id_middleware
            shutdown_timeout=settings.worker_shutdown_grace_seconds,
        )
        await runner.setup()
        # what start-up built (modules, the app, its schemas) leaves the collector's generations,
        # so its cyclic GC scans only what requests and jobs allocate (~2 % of the edge's CPU)
        gc.collect()
        gc.freeze()
        stack.push_async_callback(runner.cleanup)
        if listen:
            site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None)
            await site.start()
            log.info("service_started", url=f"http://{settings.host}:{settings.port}")
        else:
            log.info("worker_only_started")
        await _until_stopped(supervisor)
        log.info("service_stopping")


@contextlib.asynccontextmanager
async def _sandbox(settings: Settings):  # type: ignore[no-untyped-def]
    """The Calendly sandbox on SANDBOX_PORT, sharing the service's client credentials."""
    from calendly_svc.sandbox import SandboxConfig, start_sandbox

    config = SandboxConfig(
        client_id=settings.calendly_client_id,
        client_secret=settings.calendly_client_secret.get_secret_value(),
        webhook_signing_key=settings.calendly_webhook_signing_key.get_secret_value(),
    )
    server = await start_sandbox(
        config, "127.0.0.1", settings.sandbox_port, public_url=settings.sandbox_public_url
    )
    log.info("sandbox_started", url=server.url, public_url=server.public_url)
    try:
        yield server
    finally:
        await server.close()


async def _run_sandbox(args: argparse.Namespace) -> None:
    """The sandbox alone, until a signal arrives."""
    from calendly_svc.sandbox import SandboxConfig, start_sandbox

    server = await start_sandbox(SandboxConfig.from_env(), args.host, args.port, args.public_url)
    log.info("sandbox_started", url=server.url, public_url=server.public_url)
    try:
        await _wait_for_signal()
    finally:
        await server.close()


def _check_public_url(value: str | None) -> None:
    """A malformed --public-url / SANDBOX_PUBLIC_URL stops the sandbox with one clear line."""
    from calendly_svc.sandbox.config import public_base_url

    try:
        public_base_url(value)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _serve_processes(settings: Settings, workers: int, migrate: bool) -> int:
    """Apply migrations once, then run `workers` serve processes on one port until a signal;
    the first to exit on its own stops the others, and its exit code is returned."""
    if migrate:
        await apply_migrations(settings.database_url)
    argv = [sys.executable, "-m", "calendly_svc", "serve", "--no-migrate", "--reuse-port"]
    argv += ["--supervisor", str(os.getpid())]
    children = [await asyncio.create_subprocess_exec(*argv) for _ in range(workers)]
    log.info("service_processes_started", workers=workers, pids=[c.pid for c in children])
    signalled = asyncio.ensure_future(_wait_for_signal())
    exits = [asyncio.ensure_future(child.wait()) for child in children]
    done, _ = await asyncio.wait([signalled, *exits], return_when=asyncio.FIRST_COMPLETED)
    for child in children:
        if child.returncode is None:
            child.terminate()
    codes = await asyncio.gather(*exits)
    signalled.cancel()
    if signalled in done:
        return 0
    code = next((code for code in codes if code), 1)
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says


def _check_workers(workers: int) -> None:
    """--workers is at least 1, and more than 1 only outside dev mode (one embedded sandbox)."""
    problem = None
    if workers < 1:
        problem = "--workers must be at least 1"
    elif workers > 1 and dev_mode(os.environ):
        problem = "--workers needs a configured deployment, not dev mode"
    if problem is not None:
        print(f"configuration error: {problem}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = _parser().parse_args(argv)
    if args.command == "sandbox":
        _check_public_url(args.public_url)
        configure_logging(os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT"))
        asyncio.run(_run_sandbox(args))
        return
    if args.command == "serve":
        _check_workers(args.workers)
    plan = prepare_dev_environment(os.environ, DATA_DIR) if dev_mode(os.environ) else DevPlan()
    if args.command == "migrate":
        database = _settings_or_exit(DatabaseSettings, plan)
        asyncio.run(apply_migrations(database.database_url))
        return
    if args.command == "rotate-keys":
        from calendly_svc.integrations.rotation import RotationIncomplete, rotate

        keys = _settings_or_exit(KeySettings, plan)
        try:
            count = asyncio.run(rotate(keys.database_url, keys.token_encryption_key))
        except RotationIncomplete as exc:
            log.error("secrets_rotation_incomplete", error=str(exc))
            raise SystemExit(1) from exc
        log.info("secrets_rotated", rows=count)
        return
    settings = _settings_or_exit(Settings, plan)
    if args.command == "worker":
        if not settings.worker_enabled:
            print("configuration error: WORKER_ENABLED is false", file=sys.stderr)
            raise SystemExit(2)
        asyncio.run(_serve(settings, plan, migrate=False, listen=False))
        return
    if args.workers > 1:
        raise SystemExit(asyncio.run(_serve_processes(settings, args.workers, not args.no_migrate)))
    serving = _serve(
        settings, plan, migrate=not args.no_migrate, reuse_port=args.reuse_port,
        supervisor=args.supervisor,
    )  # fmt: skip
    asyncio.run(serving)


if __name__ == "__main__":
    main()
