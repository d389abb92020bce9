"""An OpenFeature provider backed by a sharpen client (``pip install 'sharpen[openfeature]'``).

>>> from openfeature import api  # doctest: +SKIP
>>> from openfeature.evaluation_context import EvaluationContext
>>> from sharpen.openfeature import SharpenProvider
>>> api.set_provider_and_wait(SharpenProvider(sharpen.Client(url, client_key)))
>>> flags = api.get_client()
>>> flags.get_string_value("fraud-v7", "fraud-v6", EvaluationContext("user-1", {"country": "US"}))

The rules (the TypeScript provider follows the same ones; ``tests/spec/openfeature.json``
holds them for both):

* **flag key** = experiment key; the evaluation context's ``targeting_key`` is the unit
  id and its scalar attributes (str, bool, int, finite float) are the targeting
  attributes (``None``, lists, objects and datetimes are left out).
* **value**: the served variant's payload.  If it has a key ``value``, that is the flag
  value; otherwise an object flag gets the whole payload and any other type is a type
  mismatch.  A boolean flag needs a bool, a string flag a str, an integer flag an int
  (not a bool), a float flag an int or a float (returned as float), an object flag an
  object or an array.  The type is checked against *every* variant of the experiment
  before the unit is assigned, so a mismatch is ``ERROR``/``TYPE_MISMATCH`` with the
  caller's default and never logs an exposure.
* **reasons** (:data:`REASONS`): ``assigned`` → ``SPLIT``; ``targeting`` →
  ``TARGETING_MATCH`` (a targeting rule on the unit's attributes decided: it gets the
  baseline); ``layer``, ``holdout``, ``traffic`` (outside the experiment's share) →
  ``DEFAULT``; ``shipped`` (every unit gets the shipped variant) and ``override`` (forced
  by the client, never exposed) → ``STATIC``;
  ``stopped``, ``rolled_back``, ``not_running`` → ``DISABLED``; a reason this SDK does
  not know (a newer service) → ``UNKNOWN``.  Errors (:data:`ERRORS`) answer the caller's
  default with reason ``ERROR`` and no variant: ``unknown_experiment`` →
  ``FLAG_NOT_FOUND``, no config ever loaded (``fallback``) → ``PROVIDER_NOT_READY``, a
  missing or empty targeting key → ``TARGETING_KEY_MISSING``.
* **flag metadata** (:data:`METADATA`): ``experiment``, ``variant``, ``in_experiment``
  and ``reason`` (sharpen's own: ``traffic``, ``holdout`` or ``layer`` behind
  ``DEFAULT``); an error carries ``experiment`` and ``in_experiment`` (false).
* **exposures** are logged by the client on evaluation, exactly as ``assign()`` does.
* **tracking** (openfeature-sdk >= 0.9): ``track(name, context, details)`` sends one
  sharpen event per experiment this provider served the unit in (``in_experiment``;
  the last ``remember_units`` units are remembered), with the variant it served, or to
  the experiment named by the details attribute ``experiment``.  Its values are
  ``{name: details.value}`` (1 when no value is given) plus the numeric details
  attributes; the context's scalar attributes and the other details attributes (which
  win a clash) are the event's attributes.  An event the service would refuse raises
  :class:`sharpen.InvalidEventError` naming the field; one about no experiment is
  dropped with a warning.

A :class:`sharpen.Client` resolves through both the sync and the async OpenFeature API;
a :class:`sharpen.AsyncClient` only through the async one (``get_*_value_async``): the
sync API answers ``ERROR``/``GENERAL`` with the default.  The provider does not own the
client: close it yourself (``client.close()`` sends the queued exposures and events).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import ErrorCode, ProviderNotReadyError
    from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
    from openfeature.provider import AbstractProvider, Metadata
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "sharpen.openfeature needs the openfeature-sdk package: pip install 'sharpen[openfeature]'"
    ) from exc

from sharpen._async_client import AsyncClient
from sharpen._client import Client
from sharpen._core import logger
from sharpen._exceptions import InvalidEventError
from sharpen._models import Assignment, thaw
from sharpen.core import ExperimentConfig

__all__ = [
    "ERRORS",
    "METADATA",
    "REASONS",
    "FlagKind",
    "SharpenProvider",
    "TypeMismatch",
    "flag_value",
]

FlagKind = Literal["boolean", "string", "integer", "float", "object"]
"""The OpenFeature flag types (TypeScript's ``number`` is ``float`` here)."""

REASONS: Final[Mapping[str, Reason]] = MappingProxyType(
    {
        "assigned": Reason.SPLIT,
        "targeting": Reason.TARGETING_MATCH,
        "shipped": Reason.STATIC,
        "override": Reason.STATIC,
        "layer": Reason.DEFAULT,
        "holdout": Reason.DEFAULT,
        "traffic": Reason.DEFAULT,
        "stopped": Reason.DISABLED,
        "rolled_back": Reason.DISABLED,
        "not_running": Reason.DISABLED,
    }
)
"""sharpen reason → OpenFeature reason, for the answers that serve a variant."""

ERRORS: Final[Mapping[str, ErrorCode]] = MappingProxyType(
    {
        "unknown_experiment": ErrorCode.FLAG_NOT_FOUND,
        "fallback": ErrorCode.PROVIDER_NOT_READY,
        "invalid_unit": ErrorCode.TARGETING_KEY_MISSING,
    }
)
"""sharpen reason → OpenFeature error code, for the answers that serve no variant."""

METADATA: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "served": ("experiment", "variant", "in_experiment", "reason"),
        "error": ("experiment", "in_experiment"),
    }
)
"""The flag metadata keys of a served answer and of an error (the same in TypeScript)."""

if TYPE_CHECKING:  # openfeature-sdk < 0.9 has no tracking
    from openfeature.track import TrackingEventDetails

_SCALARS: Final = (str, int, float, bool)
_NO_VALUE: Final = object()

T = TypeVar("T")


class TypeMismatch(ValueError):
    """A payload does not give a value of the flag's type (the message says why)."""


def flag_value(payload: Mapping[str, Any], kind: FlagKind) -> Any:
    """The value of a ``kind`` flag served by a variant with ``payload``.

    Raises :class:`TypeMismatch` when the payload does not give one (see the module doc).
    """
    value = payload.get("value", _NO_VALUE)
    if value is _NO_VALUE:
        if kind == "object":
            return thaw(payload)
        raise TypeMismatch(
            f"a {kind} flag needs a 'value' key in the payload (has {list(payload)})"
        )
    if kind == "boolean":
        ok = type(value) is bool
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, Mapping | list | tuple)
        value = thaw(value)
    if not ok:
        raise TypeMismatch(f"payload value {value!r} is not a {kind}")
    return value


class SharpenProvider(AbstractProvider):
    """OpenFeature flags from sharpen experiments, through a :class:`sharpen.Client` or
    :class:`sharpen.AsyncClient` (see the module doc for the rules)."""

    def __init__(self, client: Client | AsyncClient, *, remember_units: int = 100_000) -> None:
        if not isinstance(client, Client | AsyncClient):
            raise TypeError(f"client must be a sharpen.Client or AsyncClient (got {client!r})")
        if remember_units < 0:
            raise ValueError(f"remember_units must be >= 0 (got {remember_units!r})")
        super().__init__()
        self.client = client
        self._remember = remember_units
        # unit id -> {experiment: variant} it was served in the experiment, oldest first.
        self._served: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        # The config last checked, and (flag, type) -> why its variants mismatch, or None.
        self._checked: tuple[object, dict[tuple[str, str], str | None]] = (None, {})

    # --- lifecycle ------------------------------------------------------------------

    def get_metadata(self) -> Metadata:
        return Metadata(name="sharpen")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Ready once the client holds a config; a sync client fetches one now if needed."""
        client = self.client
        if client.config is not None:
            return
        if isinstance(client, AsyncClient):
            raise ProviderNotReadyError(
                "the AsyncClient has no config yet: `await client.start()` (or `async with`) "
                "before setting the provider"
            )
        try:
            client.refresh()
        except Exception as exc:
            raise ProviderNotReadyError(f"sharpen config not loaded: {exc}") from exc

    def shutdown(self) -> None:
        """Forget the served units; the client stays open (its owner closes it)."""
        with self._lock:
            self._served.clear()

    # --- resolution -----------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, "boolean")

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, "string")

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, "integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, "float")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, evaluation_context, "object")

    async def resolve_boolean_details_async(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return await self._resolve_async(flag_key, default_value, evaluation_context, "boolean")

    async def resolve_string_details_async(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return await self._resolve_async(flag_key, default_value, evaluation_context, "string")

    async def resolve_integer_details_async(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return await self._resolve_async(flag_key, default_value, evaluation_context, "integer")

    async def resolve_float_details_async(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return await self._resolve_async(flag_key, default_value, evaluation_context, "float")

    async def resolve_object_details_async(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return await self._resolve_async(flag_key, default_value, evaluation_context, "object")

    def _resolve(
        self, flag_key: str, default: T, context: EvaluationContext | None, kind: FlagKind
    ) -> FlagResolutionDetails[T]:
        client = self.client
        refused = self._refusal(flag_key, default, context, kind)
        if refused is not None:
            return refused
        if isinstance(client, AsyncClient):
            return _error(
                default,
                ErrorCode.GENERAL,
                "a sharpen.AsyncClient resolves only through the async API (get_*_value_async)",
                flag_key,
            )
        assert context is not None and context.targeting_key  # checked by _refusal
        unit = context.targeting_key
        assignment = client.assign(flag_key, unit, _attributes(context))
        return self._answer(assignment, unit, default, kind)

    async def _resolve_async(
        self, flag_key: str, default: T, context: EvaluationContext | None, kind: FlagKind
    ) -> FlagResolutionDetails[T]:
        client = self.client
        refused = self._refusal(flag_key, default, context, kind)
        if refused is not None:
            return refused
        assert context is not None and context.targeting_key  # checked by _refusal
        unit, attributes = context.targeting_key, _attributes(context)
        if isinstance(client, AsyncClient):
            assignment = await client.assign(flag_key, unit, attributes)
        elif client.mode == "remote":  # may wait on the network: not on the event loop
            assignment = await asyncio.to_thread(client.assign, flag_key, unit, attributes)
        else:
            assignment = client.assign(flag_key, unit, attributes)
        return self._answer(assignment, unit, default, kind)

    def _refusal(
        self, flag_key: str, default: T, context: EvaluationContext | None, kind: FlagKind
    ) -> FlagResolutionDetails[T] | None:
        """The error answer decided before assigning (so that no exposure is logged)."""
        if context is None or not context.targeting_key:
            return _error(
                default,
                ErrorCode.TARGETING_KEY_MISSING,
                "the evaluation context has no targeting_key (the unit id)",
                flag_key,
            )
        config = self.client.config
        if config is None:
            return _error(
                default, ErrorCode.PROVIDER_NOT_READY, "no sharpen config loaded yet", flag_key
            )
        entry = config.experiments.get(flag_key)
        if entry is None:  # remote mode may know it already: the service answers
            return None
        checked = self._checked
        if checked[0] is not config:  # a new config: check again
            checked = self._checked = (config, {})
        mismatch = checked[1].get((flag_key, kind), _NO_VALUE)
        if mismatch is _NO_VALUE:
            mismatch = checked[1][flag_key, kind] = _mismatch(entry, kind)
        if mismatch is not None:
            return _error(default, ErrorCode.TYPE_MISMATCH, str(mismatch), flag_key)
        return None

    def _answer(
        self, assignment: Assignment, unit: str, default: T, kind: FlagKind
    ) -> FlagResolutionDetails[T]:
        reason = assignment.reason
        error = ERRORS.get(reason)
        if error is not None or assignment.variant is None:
            message = f"sharpen answered {reason!r} for {assignment.experiment!r}"
            return _error(default, error or ErrorCode.GENERAL, message, assignment.experiment)
        try:
            value = flag_value(assignment.payload, kind)
        except TypeMismatch as exc:  # the config changed since the check
            message = f"variant {assignment.variant!r} of {assignment.experiment!r}: {exc}"
            return _error(default, ErrorCode.TYPE_MISMATCH, message, assignment.experiment)
        if assignment.in_experiment and self._remember:
            self._note(unit, assignment.experiment, assignment.variant)
        return FlagResolutionDetails(
            value=value,
            reason=REASONS.get(reason, Reason.UNKNOWN),
            variant=assignment.variant,
            flag_metadata={
                "experiment": assignment.experiment,
                "variant": assignment.variant,
                "in_experiment": assignment.in_experiment,
                "reason": reason,
            },
        )

    # --- tracking -------------------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Queue a sharpen event for the unit (see the module doc); raises
        :class:`sharpen.InvalidEventError` naming the field for what the service would
        refuse."""
        context = evaluation_context or EvaluationContext()
        unit = context.targeting_key
        if not unit:
            raise InvalidEventError("the evaluation context has no targeting_key", field="unit_id")
        value = tracking_event_details.value if tracking_event_details else None
        details = tracking_event_details.attributes if tracking_event_details else {}
        values: dict[str, float] = {tracking_event_name: 1.0 if value is None else value}
        attributes: dict[str, object] = dict(_attributes(context))
        named = "experiment" in details
        experiment = details.get("experiment")
        for name, item in details.items():
            if name == "experiment":
                continue
            if isinstance(item, int | float) and not isinstance(item, bool):
                values[name] = item
            else:
                attributes[name] = item
        if named:
            if not isinstance(experiment, str) or not experiment:
                raise InvalidEventError(
                    f"{experiment!r} is not an experiment key", field="experiment"
                )
            with self._lock:
                variant = self._served.get(unit, {}).get(experiment)
            targets = {experiment: variant}
        else:
            with self._lock:
                targets = dict(self._served.get(unit, {}))
        if not targets:
            logger.warning(
                "sharpen: track(%r): unit %r was not served in an experiment here; name one "
                "in the details attribute 'experiment' (dropped)",
                tracking_event_name,
                unit,
            )
        for key, served in targets.items():
            self.client.track(key, unit, values, attributes=attributes, variant=served)

    def _note(self, unit: str, experiment: str, variant: str) -> None:
        with self._lock:
            served = self._served.get(unit)
            if served is None:
                if len(self._served) >= self._remember:  # forget the oldest unit
                    del self._served[next(iter(self._served))]
                served = self._served[unit] = {}
            served[experiment] = variant


def _mismatch(entry: ExperimentConfig, kind: FlagKind) -> str | None:
    """Why some variant of ``entry`` gives no ``kind`` value, or ``None`` if all do."""
    for variant in entry.variants:
        try:
            flag_value(variant.payload, kind)
        except TypeMismatch as exc:
            return f"variant {variant.key!r} of {entry.key!r}: {exc}"
    return None


def _attributes(context: EvaluationContext) -> Mapping[str, object]:
    """The context's scalar attributes (targeting compares canonical scalars)."""
    return {
        k: v
        for k, v in context.attributes.items()
        if isinstance(v, _SCALARS) and not (isinstance(v, float) and not math.isfinite(v))
    }


def _error(default: T, code: ErrorCode, message: str, experiment: str) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default,
        error_code=code,
        error_message=message,
        reason=Reason.ERROR,
        flag_metadata={"experiment": experiment, "in_experiment": False},
    )
