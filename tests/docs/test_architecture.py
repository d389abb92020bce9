"""The package graph docs/architecture.md describes holds: the import-linter contracts in
pyproject.toml are kept, and the document names every package of the service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LINT = "from importlinter.cli import lint_imports_command as c; c()"


def test_import_contracts_are_kept() -> None:
    # A child process: import-linter's CLI reconfigures logging, which would silence the
    # log capture of every later test in this one.
    run = subprocess.run(
        [sys.executable, "-c", _LINT, "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_document_names_every_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    service = ROOT / "service"
    names = [p.name for p in service.iterdir() if (p / "__init__.py").exists()]
    names += [p.stem for p in service.glob("*.py") if p.stem not in ("__init__", "__main__")]
    missing = [n for n in sorted(names) if f"service/{n}" not in text]
    assert not missing, f"docs/architecture.md does not name: {missing}"
