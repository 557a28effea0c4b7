"""Inference: device and precision policy, int8, preprocessing, segmentation, the Recognizer, evaluation, export.

Every caller (CLI, server, evaluation, report, training's calibration) goes image -> `preprocess` ->
`engine.probabilities` -> `recognizer.postprocess`. Nothing here imports training or the app.
"""
