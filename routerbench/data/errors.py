"""The one error type for bad input data: its message is the whole user-facing text."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input: the message names the file, the row and the field.

    The CLI prints the message (no traceback) and exits with status 2.
    """

    @classmethod
    def at(cls, file, row: int | None = None, field: str | None = None, msg: str = "") -> "DataError":
        """Build an error located at ``file`` (and 1-based ``row``, and ``field``)."""
        where = str(file)
        if row is not None:
            where += f":{row}"
        if field is not None:
            where += f" field {field!r}"
        return cls(f"{where}: {msg}")
