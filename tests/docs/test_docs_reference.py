"""The reference docs cannot drift from the code: every route of the OpenAPI schema is in
docs/http-api.md, every field of the spec models in docs/spec.md, every key of the results
document in docs/results.md, and none of them names something that is not there."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from service.app import create_app
from service.results import build_results
from service.settings import Settings
from service.spec import ExperimentRecord, ExperimentSpec, parse_spec
from service.spec.examples import FRAUD_V7
from service.store.aggregates import ExperimentCells
from tests.conftest import ADMIN_KEY, CLIENT_KEY, ROOT

DOCS = ROOT / "docs"
ROUTE_HEADING = re.compile(r"^### (GET|POST|PUT|PATCH|DELETE) (/\S*)$", re.M)
TABLE_FIELD = re.compile(r"^\| `([a-z_][a-z_.\[\]]*)` \|", re.M)


def _schema_routes() -> set[tuple[str, str]]:
    # create_app connects to nothing until its lifespan runs: the schema alone is read.
    settings = Settings(
        redis_url="redis://127.0.0.1:1/0", admin_keys=[ADMIN_KEY], client_keys=[CLIENT_KEY]
    )
    schema = create_app(settings).openapi()
    return {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}


def test_every_route_is_documented_and_no_other() -> None:
    text = (DOCS / "http-api.md").read_text()
    documented = set(ROUTE_HEADING.findall(text))
    routes = _schema_routes()
    missing = sorted(routes - documented)
    assert not missing, f"docs/http-api.md lacks a `### METHOD /path` section for {missing}"
    extra = sorted(documented - routes)
    assert not extra, f"docs/http-api.md documents routes the service does not have: {extra}"


def _models(annotation: Any) -> Iterator[tuple[type[BaseModel], bool]]:
    """The pydantic models inside ``annotation``, each with whether it sits in a list."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, False
    elif origin is typing.Annotated:
        yield from _models(typing.get_args(annotation)[0])
    elif origin in (list, tuple):
        for arg in typing.get_args(annotation):
            yield from ((model, True) for model, _ in _models(arg))
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _models(arg)


def spec_fields(model: type[BaseModel] = ExperimentSpec, prefix: str = "") -> list[str]:
    """Every field of the spec as docs/spec.md writes it: ``analysis.looks``,
    ``metrics[].mde``, ``rollout.steps[].traffic``."""
    out = []
    for name, info in model.model_fields.items():
        path = prefix + name
        out.append(path)
        for nested, in_list in _models(info.annotation):
            out += spec_fields(nested, path + ("[]." if in_list else "."))
    return out


def test_every_spec_field_is_documented_and_no_other() -> None:
    text = (DOCS / "spec.md").read_text()
    fields = spec_fields()
    assert "rollout.steps[].min_duration" in fields and "metrics[].margin" in fields
    documented = set(TABLE_FIELD.findall(text))
    missing = [f for f in fields if f not in documented]
    assert not missing, f"docs/spec.md has no table row for the spec fields {missing}"
    extra = sorted(documented - set(fields))
    assert not extra, f"docs/spec.md describes fields the spec does not have: {extra}"


def test_spec_doc_example_is_the_example_file_and_valid() -> None:
    text = (DOCS / "spec.md").read_text()
    example = (ROOT / "examples" / "fraud-v7.yaml").read_text()
    assert f"```yaml\n{example}```" in text
    assert parse_spec(FRAUD_V7).key == "fraud-v7"


def test_every_results_key_is_documented() -> None:
    spec = ExperimentSpec.model_validate(FRAUD_V7)
    record = ExperimentRecord(
        key=spec.key, spec=spec, status="running", created_at=0.0, updated_at=0.0, started_at=0.0
    )
    doc = build_results(record, ExperimentCells(spec.key, (), ()), now=3600.0)
    text = (DOCS / "results.md").read_text()
    missing = [key for key in doc if f"`{key}`" not in text]
    assert not missing, f"docs/results.md does not describe the results keys {missing}"
