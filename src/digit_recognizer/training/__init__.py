"""Training: recipes, the loop, augmentation, checkpoints, calibration, ensembles and the run folder.

Imports run one way: training uses models, data and inference; nothing below it imports training.
"""
