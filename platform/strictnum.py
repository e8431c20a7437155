"""Numbers are numbers: a YAML ``true`` is refused where a spec or trainer field takes an int or a float.

Pydantic's lax mode reads ``epochs: true`` as 1; strict ints would also refuse ``"3"`` and ``2.0``, which the
spec loader deliberately coerces (a choice given as text). This refuses booleans only.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import pydantic
from pydantic_core import InitErrorDetails, PydanticCustomError


def _numeric(annotation: Any) -> bool:
    """Whether a field annotation is a number (int or float, optionally None) and not also a bool."""
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = set(typing.get_args(annotation))
        return bool(args & {int, float}) and bool not in args and args <= {int, float, type(None)}
    return False


def refuse_bool_numbers(model: type[pydantic.BaseModel], data: Any) -> Any:
    """For a ``mode="before"`` model validator: a ValidationError located at each numeric field given a bool."""
    if not isinstance(data, dict):
        return data
    errors = []
    for name, value in data.items():
        field = model.model_fields.get(name) if isinstance(name, str) else None
        if field is None:
            field = next((f for f in model.model_fields.values() if f.alias == name), None)
        if isinstance(value, bool) and field is not None and _numeric(field.annotation):
            kind = "an integer" if field.annotation is int or int in typing.get_args(field.annotation) else "a number"
            error = PydanticCustomError("bool_number", f"needs {kind}, not the boolean {str(value).lower()}", {})
            errors.append(InitErrorDetails(type=error, loc=(name,), input=value))
    if errors:
        raise pydantic.ValidationError.from_exception_data(model.__name__, errors)
    return data


def refuse_bool_items(values: Any, what: str) -> Any:
    """For a list-of-int field validator (``mode="before"``): refuse a boolean item."""
    if isinstance(values, list) and any(isinstance(v, bool) for v in values):
        raise ValueError(f"{what} are integers; got a boolean in {values}")
    return values
