"""``sharpen.__all__`` is complete and only names what exists (ruff's RUF022 keeps it sorted)."""

from __future__ import annotations

import types

import sharpen


def test_all_names_exist_and_are_unique() -> None:
    assert len(set(sharpen.__all__)) == len(sharpen.__all__)
    for name in sharpen.__all__:
        assert hasattr(sharpen, name), name


def test_every_public_member_is_exported() -> None:
    public = {
        name
        for name, value in vars(sharpen).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public <= set(sharpen.__all__), public - set(sharpen.__all__)


def test_exported_objects_come_from_private_modules() -> None:
    for name in sharpen.__all__:
        module = getattr(getattr(sharpen, name), "__module__", None)
        if isinstance(module, str) and module.startswith("sharpen"):
            assert module.split(".")[1].startswith("_"), (name, module)
