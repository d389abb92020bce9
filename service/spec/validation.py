"""Parse a spec and report every rule a user can break, each with the field at fault."""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from service.errors import FieldError, ValidationFailed, field_error
from service.spec.models import ExperimentSpec
from service.spec.rollout import rollout_errors

__all__ = ["check_spec", "field_message", "loc_to_field", "parse_spec", "pydantic_details"]

MAX_SEGMENT_VALUE_CHARS = 256  # the longest attribute value events may carry by default


def loc_to_field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _known_fields(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every field name of ``model`` and of the models its fields hold."""
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for info in model.model_fields.values():
        for inner in _models_in(info.annotation):
            names |= _known_fields(inner, seen)
    return names


@functools.cache
def _fields_of(annotation: Any) -> list[str]:
    names: set[str] = set()
    for model in _models_in(annotation):
        names |= _known_fields(model)
    return sorted(names)


def field_message(err: Any, body: Any = ExperimentSpec) -> str:
    """Pydantic's message; an unknown field also names the nearest field known to ``body``
    (a model, or an annotation holding models), for typos: ``did you mean `mde`?``."""
    loc = err.get("loc") or ()
    if err.get("type") == "extra_forbidden" and loc and isinstance(loc[-1], str):
        close = difflib.get_close_matches(loc[-1], _fields_of(body), n=1, cutoff=0.6)
        if close:
            return f"{err.get('msg')}: did you mean `{close[0]}`?"
    return str(err.get("msg", "invalid"))


def pydantic_details(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[FieldError]:
    return [
        field_error(loc_to_field(prefix + tuple(err["loc"])), field_message(err), type=err["type"])
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def _cross_field(spec: ExperimentSpec) -> Iterator[FieldError]:
    keys = spec.variant_keys()
    for i, key in enumerate(keys):
        if key in keys[:i]:
            yield field_error(f"variants.{i}.key", f"duplicate variant key {key!r}")
    if spec.baseline not in keys:
        yield field_error("baseline", f"{spec.baseline!r} is not one of the variants {keys}")

    names = [m.name for m in spec.metrics]
    primaries = [i for i, m in enumerate(spec.metrics) if m.role == "primary"]
    if not primaries:
        yield field_error("metrics", "exactly one metric must have role 'primary'; none does")
    for i in primaries[1:]:
        yield field_error(f"metrics.{i}.role", "exactly one metric may have role 'primary'")

    for i, m in enumerate(spec.metrics):
        where = f"metrics.{i}"
        if m.name in names[:i]:
            yield field_error(f"{where}.name", f"duplicate metric name {m.name!r}")
        if m.kind == "ratio":
            if m.numerator is None:
                yield field_error(f"{where}.numerator", "a ratio metric needs a numerator")
            if m.denominator is None:
                yield field_error(f"{where}.denominator", "a ratio metric needs a denominator")
            if m.value is not None:
                yield field_error(f"{where}.value", "a ratio metric takes numerator/denominator")
        else:
            if m.value is None:
                yield field_error(f"{where}.value", f"a {m.kind} metric needs a value name")
            if m.numerator is not None or m.denominator is not None:
                yield field_error(f"{where}.numerator", f"a {m.kind} metric has no numerator")
        if m.role == "guardrail" and m.margin is None:
            yield field_error(f"{where}.margin", "a guardrail needs a non-inferiority margin")
        if m.role == "primary" and m.mde is None:
            yield field_error(f"{where}.mde", "the primary metric needs a minimum effect (mde)")
        if m.kind == "proportion" and m.baseline_mean is not None and not 0 < m.baseline_mean < 1:
            yield field_error(f"{where}.baseline_mean", "a proportion's baseline is in (0, 1)")

    names = spec.segment_names
    for i, seg in enumerate(spec.segments):
        if seg.name in names[:i]:
            yield field_error(f"segments.{i}", f"duplicate segment {seg.name!r}")
        values = seg.canonical_values()
        for j, value in enumerate(values):
            if value in values[:j]:
                yield field_error(f"segments.{i}.values.{j}", f"duplicate value {value!r}")
            elif not 0 < len(value) <= MAX_SEGMENT_VALUE_CHARS:
                yield field_error(
                    f"segments.{i}.values.{j}",
                    f"a value has 1 to {MAX_SEGMENT_VALUE_CHARS} characters",
                )
    for attr, allowed in spec.targeting.items():
        if not allowed:
            yield field_error(f"targeting.{attr}", "needs at least one allowed value")
        if len(allowed) > 1000:
            yield field_error(f"targeting.{attr}", "at most 1000 allowed values")
    if spec.layer is None and spec.layer_share != 1.0:
        yield field_error("layer_share", "layer_share needs a layer")
    if spec.rollout is not None:
        yield from rollout_errors(spec.rollout, spec.traffic)


def check_spec(spec: ExperimentSpec) -> ExperimentSpec:
    """Apply the cross-field rules to a parsed spec; raise listing every fault."""
    details = list(_cross_field(spec))
    if details:
        raise ValidationFailed("invalid experiment spec", details)
    return spec


def parse_spec(data: Any) -> ExperimentSpec:
    """Validate ``data`` as a spec; raise :class:`ValidationFailed` listing every fault."""
    if isinstance(data, ExperimentSpec):
        return check_spec(data)
    if not isinstance(data, dict):
        raise ValidationFailed(
            "the experiment spec must be a JSON object", [field_error("body", "not an object")]
        )
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("invalid experiment spec", pydantic_details(exc)) from None
    return check_spec(spec)
