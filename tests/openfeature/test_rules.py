"""The provider's rules against the language-neutral table both providers share
(``tests/spec/openfeature.json``), and the extra stays optional."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from openfeature.exception import ErrorCode

from sharpen._models import freeze
from sharpen.openfeature import ERRORS, REASONS, TypeMismatch, flag_value
from tests.conftest import ROOT

SPEC = json.loads((ROOT / "tests" / "spec" / "openfeature.json").read_text())


def test_reason_and_error_tables_are_the_shared_ones() -> None:
    assert {k: str(v) for k, v in REASONS.items()} == SPEC["reasons"]
    assert {k: str(v) for k, v in ERRORS.items()} == SPEC["errors"]
    assert set(ErrorCode) >= set(ERRORS.values())
    # Every sharpen reason is mapped once: a reason or an error, never both, none missing.
    import sharpen

    assert set(REASONS) | set(ERRORS) == sharpen.REASONS
    assert not set(REASONS) & set(ERRORS)


@pytest.mark.parametrize(
    "case", SPEC["values"], ids=lambda c: f"{c['type']}-{json.dumps(c['payload'])}"
)
def test_payload_to_flag_value(case: dict[str, Any]) -> None:
    payload = freeze(case["payload"])  # payloads reach the provider read-only, as parsed
    if "error" in case:
        assert case["error"] == "TYPE_MISMATCH"
        with pytest.raises(TypeMismatch):
            flag_value(payload, case["type"])
        return
    value = flag_value(payload, case["type"])
    assert value == case["value"]
    assert type(value) is type(case["value"])
    if case["type"] == "object":  # plain JSON containers, as OpenFeature checks
        assert json.loads(json.dumps(value)) == value


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_sharpen_does_not_import_openfeature() -> None:
    done = _python(
        "import sys, sharpen\n"
        "sharpen.Client, sharpen.AsyncClient\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'openfeature'))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_the_extra_the_provider_says_how_to_install_it() -> None:
    done = _python("import sys\nsys.modules['openfeature'] = None\nimport sharpen.openfeature")
    assert done.returncode == 1
    assert "ImportError: sharpen.openfeature needs the openfeature-sdk package" in done.stderr
    assert "pip install 'sharpen[openfeature]'" in done.stderr


def _reason_table(text: str) -> dict[str, str]:
    """The README's reason table: first cell → second cell."""
    start = text.index("| sharpen reason | OpenFeature answer |")
    rows: dict[str, str] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.strip().startswith("|"):
            break
        left, right = (cell.strip() for cell in line.strip().strip("|").split("|"))
        rows[left] = right
    return rows


def test_both_readmes_print_the_shared_reason_table() -> None:
    python = _reason_table((ROOT / "README.md").read_text())
    typescript = _reason_table((ROOT / "sdk-js" / "README.md").read_text())
    assert python == typescript
    answers = {f"`{code}`" for code in SPEC["reasons"].values()} | {
        f"`ERROR`, `{code}`" for code in SPEC["errors"].values()
    }
    for reason, code in SPEC["reasons"].items():
        assert [right for left, right in python.items() if f"`{reason}`" in left] == [
            f"`{code}`"
        ], reason
    for reason, code in SPEC["errors"].items():
        assert [right for left, right in python.items() if f"`{reason}`" in left] == [
            f"`ERROR`, `{code}`"
        ]
    unknown = SPEC["unknown_reason"]["reason"]
    assert [right for left, right in python.items() if "does not know" in left] == [f"`{unknown}`"]
    assert set(python.values()) == answers | {f"`{unknown}`", "`ERROR`, `TYPE_MISMATCH`"}
