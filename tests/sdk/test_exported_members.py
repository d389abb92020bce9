"""``sharpen.__all__`` and ``sharpen.core.__all__`` are complete and only name what exists;
the core's names are still importable from ``sharpen``, with a DeprecationWarning."""

from __future__ import annotations

import types

import pytest

import sharpen
import sharpen.core

APPLICATION = {
    "Assignment",
    "AsyncClient",
    "Client",
    "ClientClosedError",
    "ClientStats",
    "ConfigError",
    "HTTPStatusError",
    "InvalidEventError",
    "MAX_UNIT_ID",
    "Mode",
    "REASONS",
    "Reason",
    "RetryPolicy",
    "SharpenError",
    "TransportError",
    "UnsupportedHashVersionError",
    "__version__",
    "core",
}


@pytest.mark.parametrize("module", [sharpen, sharpen.core], ids=lambda m: m.__name__)
def test_all_names_exist_and_are_unique(module: types.ModuleType) -> None:
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert name in vars(module), name


@pytest.mark.parametrize("module", [sharpen, sharpen.core], ids=lambda m: m.__name__)
def test_every_public_member_is_exported(module: types.ModuleType) -> None:
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public <= set(module.__all__), public - set(module.__all__)


def test_the_top_level_holds_the_application_names() -> None:
    assert set(sharpen.__all__) == APPLICATION


@pytest.mark.parametrize("module", [sharpen, sharpen.core], ids=lambda m: m.__name__)
def test_exported_objects_come_from_private_modules(module: types.ModuleType) -> None:
    for name in module.__all__:
        defined_in = getattr(getattr(module, name), "__module__", None)
        if isinstance(defined_in, str) and defined_in.startswith("sharpen"):
            assert defined_in.split(".")[1].startswith("_"), (name, defined_in)


@pytest.mark.parametrize("name", sorted(set(sharpen.core.__all__) - APPLICATION))
def test_core_names_still_import_from_sharpen_with_a_warning(name: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"sharpen.core.{name}"):
        value = getattr(sharpen, name)
    assert value is getattr(sharpen.core, name)
    assert name in dir(sharpen)


def test_unknown_names_still_raise() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        sharpen.no_such_name  # noqa: B018
