"""Inference: device and precision policy, int8, the image reader, the Recognizer, evaluation, export.

Every caller (CLI, server, evaluation, report, training's calibration) goes image -> `reader.read_digit` (the
digit fitted as MNIST was, plus a stretched view of a very narrow or flat one; `reader.read_marks` for every digit
of a number) -> `engine.probabilities`, averaged over the views -> `recognizer.postprocess`. Nothing here imports
training or the app.
"""
