"""The exceptions users see: each message names the file or input and what is wrong, in one line.

Subclasses say what kind of problem it is, so the HTTP API can answer with the right status code.
"""


class DigitsError(Exception):
    """A problem with the user's input, files or environment, reported as one line by the CLI."""


class UsageError(DigitsError):
    """An option or argument the command cannot take (exit code 2, as for Click's own usage errors)."""


class EmptyInput(DigitsError):
    """An empty file or request."""


class NotAnImage(DigitsError):
    """Bytes that no supported image decoder accepts, or an array that is not an image."""


class TooLarge(DigitsError):
    """More pixels than the decompression-bomb cap allows."""


class Refusal(DigitsError):
    """A readable image with no digit to give: the Recognizer answers it as refused (with this reason), it
    does not raise it."""

    def reason(self, name: str) -> str:
        """The message without the leading "NAME: "."""
        text = str(self)
        return text[len(name) + 2:] if text.startswith(f"{name}: ") else text


class NoInk(Refusal):
    """A blank or nearly uniform image: nothing to read."""


class NotADigit(Refusal):
    """Ink that does not look like a handwritten digit: noise, texture, scattered marks."""


class SeveralDigits(NotADigit):
    """A number where one digit was expected: reading a number reads it."""


class DigitsWarning(UserWarning):
    """A choice the user forced that costs accuracy or speed on this machine; shown once per process."""


def os_error_line(e: OSError) -> str:
    """An OSError as one line: the path, then the cause in words (no space left, read-only, permission)."""
    import errno

    causes = {errno.ENOSPC: "no space left on the device", errno.EROFS: "the file system is read-only",
              errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
              errno.EDQUOT: "disk quota exceeded"}
    cause = causes.get(e.errno, e.strerror or str(e))
    return f"{e.filename}: {cause}" if e.filename is not None else f"{cause} (while reading or writing files)"
