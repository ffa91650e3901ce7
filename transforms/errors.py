"""User-facing errors: one sentence naming the file, row, field, tag or expression at fault."""


class SegflowError(Exception):
    """An error meant for the user: printed as one line, exit code 1, no traceback."""
