"""digits: handwritten-digit recognition with PyTorch.

    from digit_recognizer import Recognizer
    Recognizer.load().predict("photo.jpg").digit
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Recognizer", "Prediction", "DigitsError", "__version__"]

if TYPE_CHECKING:
    from .errors import DigitsError
    from .inference.recognizer import Prediction, Recognizer


def __getattr__(name: str):
    # Lazy, so `digits --help` and `import digit_recognizer` don't pay for importing torch.
    if name in ("Recognizer", "Prediction"):
        from .inference import recognizer
        return getattr(recognizer, name)
    if name == "DigitsError":
        from .errors import DigitsError
        return DigitsError
    raise AttributeError(f"module 'digit_recognizer' has no attribute {name!r}")
