"""Turning snapshots into the plain JSON of the `snapshot --json` contract."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from backends.collector import Snapshot

#: The metadata key of a dataclass field that JSON leaves out.
JSON_SKIP = "json_skip"


def to_jsonable(obj: Any) -> Any:
    """Dataclasses become objects, enums their values, paths strings, NaN/inf null.

    A dataclass field with ``metadata={JSON_SKIP: True}`` is the panel's working state
    (an index, a change log), not part of the `snapshot --json` contract: it is left out.
    """
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.metadata.get(JSON_SKIP)
        }
    if isinstance(obj, Mapping):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in obj]
    raise TypeError(f"cannot express {type(obj).__name__} in JSON")


def envelope(snapshot: Snapshot[Any], now: float) -> dict[str, Any]:
    """One panel's entry in `snapshot --json`: ok, error, age_s, refreshing, duration_s, value."""
    age = snapshot.age_s(now)
    return {
        "ok": snapshot.ok,
        "error": snapshot.error,
        "age_s": None if age is None else round(age, 3),
        "refreshing": snapshot.refreshing,
        "duration_s": None if snapshot.duration_s is None else round(snapshot.duration_s, 4),
        "value": to_jsonable(snapshot.value),
    }
