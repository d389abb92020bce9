"""The CLI's HTTP side: where the service is, which key to use, and error display."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console

__all__ = [
    "AdminAPI",
    "dev_keys_path",
    "fail",
    "find_dev_key",
    "load_dev_keys",
    "remember_dev_keys",
    "user_config_dir",
]

err_console = Console(stderr=True)
DEFAULT_URL = "http://127.0.0.1:8000"


def dev_keys_path(data_dir: Path) -> Path:
    return data_dir / "dev-keys.json"


def load_dev_keys(data_dir: Path) -> dict[str, str]:
    path = dev_keys_path(data_dir)
    if not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text())
    return data


def user_config_dir() -> Path:
    """Where ``serve --dev`` remembers its keys for the CLI: ``$XDG_CONFIG_HOME/sharpen``,
    else ``~/.config/sharpen`` (``%APPDATA%\\sharpen`` on Windows)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.environ.get("APPDATA")
    return (Path(base) if base else Path.home() / ".config") / "sharpen"


def remember_dev_keys(url: str, keys: dict[str, str]) -> Path:
    """Record the dev keys of the service at ``url`` in the user's config dir (0600)."""
    path = user_config_dir() / "dev-keys.json"
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    known[url.rstrip("/")] = keys
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(known, indent=1))
    return path


def find_dev_key(url: str, scope: str) -> str | None:
    """The dev key of ``scope`` for the service at ``url``, from any folder: the data dir
    (``SHARPEN_DATA_DIR``, else ``./.sharpen``), then what ``serve --dev`` remembered for
    that URL in the user's config dir."""
    data_dir = Path(os.environ.get("SHARPEN_DATA_DIR", ".sharpen"))
    key = load_dev_keys(data_dir).get(scope)
    if key:
        return key
    path = user_config_dir() / "dev-keys.json"
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return None
    entry = known.get(url.rstrip("/")) if isinstance(known, dict) else None
    found = entry.get(scope) if isinstance(entry, dict) else None
    return found if isinstance(found, str) else None


def fail(message: str, details: list[dict[str, Any]] | None = None) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    for detail in details or []:
        err_console.print(f"  - [bold]{detail.get('field', '?')}[/]: {detail.get('message', '')}")
    raise typer.Exit(1)


class AdminAPI:
    """A thin synchronous client for the admin endpoints, raising readable CLI errors."""

    def __init__(
        self,
        url: str | None,
        api_key: str | None,
        *,
        scope: str = "admin",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("SHARPEN_URL") or DEFAULT_URL).rstrip("/")
        env_name = "SHARPEN_API_KEY" if scope == "admin" else "SHARPEN_CLIENT_KEY"
        key = api_key or os.environ.get(env_name)
        if not key:
            key = find_dev_key(self.url, scope)
        if not key:
            fail(f"no API key: pass --api-key or set {env_name} (`sharpen serve --dev` prints one)")
        self._client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30.0,
            transport=transport,
        )

    def request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            fail(f"cannot reach sharpen at {self.url}: {exc}")
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                fail(f"HTTP {response.status_code}: {response.text[:500]}")
            fail(f"{error.get('message')} (HTTP {response.status_code})", error.get("details"))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AdminAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
