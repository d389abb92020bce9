"""The README's CLI table is the typer app's: every command, its arguments and options.

The command outputs in generated blocks need a service; tests/docs/test_readme_walk.py
compares them on a fresh clone.
"""

from __future__ import annotations

from scripts import readme_outputs as gen
from service.cli import app
from tests.conftest import ROOT


def _commands() -> list[str]:
    return [c.name or (c.callback.__name__ if c.callback else "?") for c in app.registered_commands]


def test_cli_table_is_generated_from_the_app() -> None:
    text = (ROOT / "README.md").read_text()
    tables = [b for b in gen.blocks("README.md", text) if b.spec == gen.CLI_TABLE]
    assert len(tables) == 1, "README.md needs one <!-- generated: cli-table --> block"
    assert tables[0].body == gen.render_block(tables[0], lambda args: ""), (
        "the README's CLI table is stale: run `.venv/bin/python scripts/readme_outputs.py --write`"
    )
    for name in _commands():
        assert f"| `sharpen {name}" in tables[0].body


def test_every_command_is_in_docs_cli() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for name in _commands():
        assert f"`{name}`" in text, f"docs/cli.md does not describe `sharpen {name}`"


def test_blocks_are_found_with_their_indent_and_masked_times() -> None:
    text = (
        "intro\n"
        "   <!-- generated: sharpen plan x.yaml; sharpen get k -->\n   old\n   <!-- end -->\n"
    )
    (block,) = gen.blocks("x.md", text)
    assert block.commands == ["sharpen plan x.yaml", "sharpen get k"]
    assert block.indent == "   " and block.body == "   old\n"
    assert gen.same("at 2026-12-04 16:27:07 UTC", "at 2027-01-01 00:00:00 UTC")
    assert not gen.same("4,227 users", "4,021 users")
