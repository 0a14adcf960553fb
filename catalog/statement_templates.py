"""Querysets compiled to SQL once, with slots for the values that change from call to call.

Django compiles a queryset afresh on every evaluation. For the hybrid search that was ~2 ms of
Python per request, spent rebuilding the same statements for the same filters. A template is
compiled once per process and filter set; each search binds its vector, words and ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet


@dataclass(frozen=True)
class StatementTemplate:
    sql: str
    params: tuple[Any, ...]
    # slot name -> the positions in ``params`` its value takes (a value may be used twice)
    slots: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def compile(cls, queryset: QuerySet[Any], **placeholders: object) -> StatementTemplate:
        """``placeholders``: each slot's name and the value the queryset was built with in its
        place, which must equal none of the statement's other parameters."""
        sql, params = queryset.query.sql_with_params()
        slots = tuple(
            (name, tuple(at for at, param in enumerate(params) if _same(param, placeholder)))
            for name, placeholder in placeholders.items()
        )
        missing = [name for name, positions in slots if not positions]
        if missing:
            raise ValueError(f"no parameter holds the placeholder of slot(s) {missing}")
        return cls(sql, tuple(params), slots)

    def bind(self, **values: object) -> list[Any]:
        """The parameters with each slot's value; values for slots it lacks are ignored."""
        params = list(self.params)
        for name, positions in self.slots:
            for at in positions:
                params[at] = values[name]
        return params


def _same(param: object, placeholder: object) -> bool:
    return type(param) is type(placeholder) and param == placeholder
