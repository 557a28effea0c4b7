"""The exceptions users see: each message names the file or input and what is wrong, in one line.

Subclasses say what kind of problem it is, so the HTTP API can answer with the right status code.
"""


class DigitsError(Exception):
    """A problem with the user's input, files or environment, reported as one line by the CLI."""


class EmptyInput(DigitsError):
    """An empty file or request."""


class NotAnImage(DigitsError):
    """Bytes that no supported image decoder accepts, or an array that is not an image."""


class TooLarge(DigitsError):
    """More pixels than the decompression-bomb cap allows."""


class NoInk(DigitsError):
    """A blank or nearly uniform image: nothing to read."""


class NotADigit(DigitsError):
    """Ink that does not look like a handwritten digit: noise, texture, scattered marks."""


class SeveralDigits(NotADigit):
    """A number where one digit was expected: `read` reads numbers."""


class DigitsWarning(UserWarning):
    """A choice the user forced that costs accuracy or speed on this machine; shown once per process."""
