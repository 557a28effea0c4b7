"""The one exception type users see: its message names the file or input and what is wrong."""


class DigitsError(Exception):
    """A problem with the user's input, files or environment, reported as one line by the CLI."""
