"""`python -m digit_recognizer ...` works as `digits ...` (and under `torchrun -m digit_recognizer`)."""
from .app.cli import main

if __name__ == "__main__":
    main()
