"""Shared behaviour of mdn's typed configurations (frozen dataclasses)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Self


class ConfigMixin:
    """JSON round trip for a frozen dataclass; unknown keys are rejected when loading."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dictionary of every field (tuples become lists)."""
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def to_json(self) -> str:
        """Serialise to JSON."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from a dictionary made by :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(data, dict):
            raise TypeError(f"a {cls.__name__} must be built from a dict, not {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
        return cls(**data)
