"""Data: readers for IDX/npz/Kaggle CSV, the verified MNIST fetch chain, and the train/validation split."""
from .dataset import Dataset, Split, load_mnist, train_val_split
from .formats import read_idx, read_kaggle_csv, read_npz, write_submission
from .sources import MNIST_FILES, default_data_dir, fetch_mnist

__all__ = ["Dataset", "Split", "load_mnist", "train_val_split", "read_idx", "read_kaggle_csv", "read_npz",
           "write_submission", "MNIST_FILES", "default_data_dir", "fetch_mnist"]
