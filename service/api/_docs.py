"""OpenAPI helpers for routes that decode their bodies themselves (bounded first), and the
``/docs`` page: Swagger UI served from the installed ``swagger-ui-bundle`` package, so it
works offline and asks no third-party host for anything."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from swagger_ui_bundle import swagger_ui_path

__all__ = ["DOCS_ASSETS", "install_docs", "json_body"]

DOCS_ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """``GET /docs`` (Swagger UI) with its scripts, styles and icon from this service.
    Create the app with ``docs_url=None, redoc_url=None`` so no CDN page is served."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs_assets")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)


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
