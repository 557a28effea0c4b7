"""MNIST-layout data sets as uint8 tensors, and the deterministic stratified train/validation split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..constants import NUM_CLASSES
from .formats import check_images_labels, parse_idx, read_bytes
from .sources import MNIST_FILES, FetchReport, fetch_mnist

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = MNIST_FILES


@dataclass(frozen=True)
class Split:
    """Images (N, 28, 28) uint8 and labels (N,) int64. Normalisation belongs to the model."""
    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=NUM_CLASSES).tolist()


@dataclass(frozen=True)
class Dataset:
    train: Split
    test: Split
    source: FetchReport


def read_split(images_path: Path, labels_path: Path) -> Split:
    images = parse_idx(read_bytes(images_path), str(images_path))
    labels = parse_idx(read_bytes(labels_path), str(labels_path)).astype(np.int64)
    check_images_labels(images, labels, f"{images_path} + {labels_path.name}")
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels))


def load_mnist(data_dir: str | Path | None = None, *, verify: bool = True, progress: bool = True) -> Dataset:
    """Fetch if needed, then read train (60,000) and test (10,000) from the data dir."""
    report = fetch_mnist(data_dir, verify=verify, progress=progress)
    p = report.paths
    return Dataset(read_split(p[TRAIN_IMAGES], p[TRAIN_LABELS]), read_split(p[TEST_IMAGES], p[TEST_LABELS]), report)


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_idx, val_idx): val_fraction of each class, chosen by a seeded permutation. Deterministic."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    gen = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for c in range(int(labels.max()) + 1 if len(labels) else 0):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = int(round(len(idx) * val_fraction))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    # Sorted so batches are shuffled by the trainer, not by the split.
    return torch.cat(train_idx).sort().values, torch.cat(val_idx).sort().values


def train_val_split(split: Split, val_fraction: float = 0.1, seed: int = 0) -> tuple[Split, Split]:
    tr, va = stratified_split(split.labels, val_fraction, seed)
    return Split(split.images[tr], split.labels[tr]), Split(split.images[va], split.labels[va])
