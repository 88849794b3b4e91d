"""handprop.data: IDX files, MNIST / Fashion-MNIST, batching and normalisation (NumPy only)."""
from .datasets import fashion_mnist, load_dataset, mnist
from .errors import DatasetError
from .idx import read_idx, write_idx
from .loader import ArrayDataset, DataLoader
from .registry import DATASETS, DatasetSpec
from .search import cache_dir, find_dataset, search_paths
from .transforms import Normalize, to_float_flat, train_valid_split

__all__ = [
    "DATASETS", "ArrayDataset", "DataLoader", "DatasetError", "DatasetSpec", "Normalize",
    "cache_dir", "fashion_mnist", "find_dataset", "load_dataset", "mnist", "read_idx",
    "search_paths", "to_float_flat", "train_valid_split", "write_idx",
]
