"""Compile errors that name the offending field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class CompileError(Exception):
    """One or more fields of a resource cannot be compiled."""

    def __init__(self, field_or_errors: str | list[FieldError], message: str | None = None):
        if isinstance(field_or_errors, str):
            self.errors = [FieldError(field_or_errors, message or "invalid")]
        else:
            self.errors = list(field_or_errors)
        super().__init__("; ".join(str(e) for e in self.errors))
