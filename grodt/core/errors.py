"""Exceptions that reach users: each message names what to fix (file, row, column or field), and
the exit statuses the ``grodt`` command ends with."""

EXIT_USER_ERROR = 2
"""Exit status of a command stopped by a :class:`GrodtError` (a config error, bad input)."""

EXIT_UNDELIVERED = 3
"""Exit status of a run that finished with forensics records still undelivered."""


class GrodtError(Exception):
    """Base of every error grodt reports to a user without a traceback."""


class ConfigError(GrodtError):
    """A node config, instrument spec or limit config is invalid; the message names the field
    path."""


class DataValidationError(GrodtError):
    """Input data failed a check whose policy is ``reject``.

    Attributes
    ----------
    path : str
        The offending file.
    row : int | None
        1-based data row (the first row after the header is row 1), if the error is row-level.
    column : str | None
        The offending column, if any.
    check : str | None
        The name of the check that failed.
    """

    def __init__(
        self,
        message: str,
        path: str,
        row: int | None = None,
        column: str | None = None,
        check: str | None = None,
    ) -> None:
        location = path
        if row is not None:
            location += f", row {row}"
        if column is not None:
            location += f", column {column!r}"
        super().__init__(f"{location}: {message}")
        self.path = path
        self.row = row
        self.column = column
        self.check = check
