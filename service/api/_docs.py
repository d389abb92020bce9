"""OpenAPI helpers for routes that decode their bodies themselves (bounded first)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["json_body"]


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def json_body(
    model: type[BaseModel],
    example: dict[str, Any] | None = None,
    *,
    examples: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON request body shaped like ``model`` (self-contained:
    nested models are inlined), with one ``example`` or named ``examples``. The route
    decodes the body itself."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    media: dict[str, Any] = {"schema": _inline(schema, defs)}
    if example is not None:
        media["example"] = example
    if examples is not None:
        media["examples"] = examples
    return {"requestBody": {"required": True, "content": {"application/json": media}}}
