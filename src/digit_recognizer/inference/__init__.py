"""Inference: device and precision policy, int8, preprocessing, segmentation, the Recognizer, evaluation, export.

Every caller (CLI, server, evaluation, report, training's calibration) goes image -> `preprocess_views` (the
digit fitted as MNIST was, plus a stretched view of a very narrow or flat one) -> `engine.probabilities`, averaged
over the views -> `recognizer.postprocess`. Nothing here imports training or the app.
"""
