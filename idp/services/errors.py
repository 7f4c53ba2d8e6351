"""Exceptions shared by the account services; views translate them into messages."""

from __future__ import annotations


class FormError(ValueError):
    """Form problems: ``errors`` maps a field to a code; ``problems`` lists password rule codes."""

    def __init__(self, errors: dict[str, str], problems: list[str] | None = None):
        super().__init__(", ".join(f"{k}={v}" for k, v in errors.items()))
        self.errors = errors
        self.problems = problems or []
