"""handprop.data: IDX files, MNIST / Fashion-MNIST, batching and normalisation (NumPy only)."""
from .datasets import (DATASETS, DatasetSpec, cache_dir, fashion_mnist, find_dataset, load_dataset,
                       mnist, search_paths)
from .errors import DatasetError
from .idx import read_idx, write_idx
from .loader import ArrayDataset, DataLoader
from .transforms import Normalize, to_float_flat, train_valid_split

__all__ = [
    "DATASETS", "ArrayDataset", "DataLoader", "DatasetError", "DatasetSpec", "Normalize",
    "cache_dir", "fashion_mnist", "find_dataset", "load_dataset", "mnist", "read_idx",
    "search_paths", "to_float_flat", "train_valid_split", "write_idx",
]
