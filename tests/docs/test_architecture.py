"""The package graph docs/architecture.md describes holds: the import-linter contracts in
pyproject.toml are kept, and the document names every package of the service."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_the_document_names_every_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    service = ROOT / "service"
    names = [p.name for p in service.iterdir() if (p / "__init__.py").exists()]
    names += [p.stem for p in service.glob("*.py") if p.stem not in ("__init__", "__main__")]
    missing = [n for n in sorted(names) if f"service/{n}" not in text]
    assert not missing, f"docs/architecture.md does not name: {missing}"
