"""Every error type of routerbench. Each message is the whole user-facing text: the CLI prints it
(no traceback) and exits with the status named here."""

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


class ConfigError(ValueError):
    """A bad config or override; the message is the whole user-facing text (exit status 2)."""


class FitInterrupted(RuntimeError):
    """Training stopped by SIGTERM or Ctrl-C. The message says where to resume from; the CLI
    prints it and exits with ``exit_code`` (143 for SIGTERM, 130 for SIGINT)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
