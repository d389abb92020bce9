"""``sharpen serve``: the API (and, by default, the worker) with embedded Redis when needed."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from service.auth import generate_key
from service.cli._http import dev_keys_path, fail, load_dev_keys, remember_dev_keys
from service.cli._workers import run_workers
from service.embedded import EmbeddedRedis, EmbeddedRedisError
from service.logs import configure_logging, settings_secrets
from service.settings import Settings

__all__ = ["load_settings", "serve"]

console = Console()


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment plus CLI overrides; one clear line per wrong value."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            env = f"SHARPEN_{field.upper()}" if err["loc"] else "settings"
            lines.append({"field": env, "message": err["msg"].removeprefix("Value error, ")})
        fail("invalid settings", lines)


def _dev_keys(data_dir: Path) -> dict[str, str]:
    keys = load_dev_keys(data_dir)
    if not keys:
        keys = {"admin": generate_key("admin"), "client": generate_key("client")}
        data_dir.mkdir(parents=True, exist_ok=True)
        path = dev_keys_path(data_dir)
        path.write_text(json.dumps(keys))
        path.chmod(0o600)
    return keys


def _listen(host: str, port: int) -> socket.socket:
    """Bind the service's listening socket now (as uvicorn would), so that a port in use
    stops ``serve`` before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _claim(settings: Settings) -> tuple[EmbeddedRedis | None, socket.socket]:
    """Lock the data directory (with embedded Redis) and bind the port, or stop with a clear
    message: a second ``serve`` on the same port or data directory starts nothing."""
    embedded: EmbeddedRedis | None = None
    if settings.redis_url is None:
        try:
            embedded = EmbeddedRedis(settings.data_dir / "redis")
            embedded.lock.acquire()
        except EmbeddedRedisError as exc:
            fail(str(exc))
    try:
        return embedded, _listen(settings.host, settings.port)
    except OSError as exc:
        if embedded is not None:
            embedded.stop()
        fail(
            f"cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}): "
            "is sharpen already running there? Stop it, or pick another --port"
        )


def serve(
    host: str = typer.Option(None, help="Bind address [SHARPEN_HOST, default 127.0.0.1]"),
    port: int = typer.Option(None, help="Port [SHARPEN_PORT, default 8000]"),
    dev: bool = typer.Option(False, "--dev", help="Make local API keys and print them"),
    redis_url: str = typer.Option(None, help="[SHARPEN_REDIS_URL]; unset: embedded Redis"),
    data_dir: Path = typer.Option(None, help="[SHARPEN_DATA_DIR, default ./.sharpen]"),
    no_worker: bool = typer.Option(False, "--no-worker", help="Do not run the worker in-process"),
    log_level: str = typer.Option(None, help="debug, info, warning, error [SHARPEN_LOG_LEVEL]"),
    log_format: str = typer.Option(
        None, help="text or json (one object a line) [SHARPEN_LOG_FORMAT, default text]"
    ),
    access_log: bool = typer.Option(
        None, "--access-log/--no-access-log", help="A log line per request [SHARPEN_ACCESS_LOG]"
    ),
    workers: int = typer.Option(
        1, min=1, help="API worker processes on the one port (docs/operations.md#sizing)"
    ),
) -> None:
    """Run the service. Without a Redis URL it starts a private redis-server (AOF on)."""
    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "redis_url": redis_url,
        "data_dir": data_dir,
        "log_level": log_level.lower() if log_level else None,
        "log_format": log_format.lower() if log_format else None,
        "access_log": access_log,
    }
    if dev:
        overrides["dev"] = True
    if no_worker:
        overrides["run_worker"] = False
    settings = load_settings(**overrides)
    embedded, listener = _claim(settings)  # before anything starts or is written
    if settings.dev:
        keys = _dev_keys(settings.data_dir)
        settings = settings.model_copy(
            update={
                "admin_keys": [*settings.admin_keys, f"dev-admin={keys['admin']}"],
                "client_keys": [*settings.client_keys, f"dev-client={keys['client']}"],
            }
        )
        shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        remembered = remember_dev_keys(f"http://{shown_host}:{settings.port}", keys)
        console.print(
            f"[bold]dev mode[/]: local API keys (also in {dev_keys_path(settings.data_dir)} "
            f"and {remembered}, where the CLI finds them from any folder)"
        )
        console.print(f"  admin key:  {keys['admin']}")
        console.print(f"  client key: {keys['client']}")
    configure_logging(
        settings.log_format,
        settings.log_level,
        secrets=settings_secrets(
            settings.admin_keys, settings.client_keys, settings.webhook_secret, settings.redis_url
        ),
    )
    if embedded is not None:
        try:
            embedded.start()
        except EmbeddedRedisError as exc:
            listener.close()
            embedded.stop()
            fail(str(exc))
        console.print(
            f"embedded redis-server pid {embedded.pid} on {embedded.url} "
            f"(AOF in {embedded.data_dir})"
        )
        settings = settings.model_copy(update={"redis_url": embedded.url})
        os.environ["SHARPEN_REDIS_URL"] = embedded.url  # for an in-process worker's children

    from service.app import create_app

    try:
        if workers > 1:
            console.print(
                f"sharpen on http://{settings.host}:{settings.port} with {workers} workers "
                "(docs at /docs)"
            )
            run_workers(settings, listener, workers)
            return
        app = create_app(settings)
        console.print(f"sharpen on http://{settings.host}:{settings.port} (docs at /docs)")
        # log_config=None: uvicorn's own loggers go through the handler configured above.
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,
            access_log=False,
            # The client address the failed-authentication limits count: X-Forwarded-For
            # only from these proxies (docs/security.md).
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it handled
            server.run(sockets=[listener])  # the socket bound above
        if not server.started:
            raise typer.Exit(3)  # as uvicorn.run: the app failed to start (logged above)
    finally:
        listener.close()
        if embedded is not None:
            embedded.stop()
            console.print("embedded redis-server stopped")
