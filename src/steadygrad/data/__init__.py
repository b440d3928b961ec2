"""Datasets held as in-memory tensors: loaders, splits, standardization and validation."""

from steadygrad.data.arrays import from_arrays as from_arrays
from steadygrad.data.compat import check_compatible as check_compatible
from steadygrad.data.compat import validate_targets as validate_targets
from steadygrad.data.dataset import Dataset as Dataset
from steadygrad.data.datasets import DATASETS as DATASETS
from steadygrad.data.datasets import FASHION_MNIST_CLASSES as FASHION_MNIST_CLASSES
from steadygrad.data.datasets import csv as csv
from steadygrad.data.datasets import digits as digits
from steadygrad.data.datasets import fashion_mnist as fashion_mnist
from steadygrad.data.datasets import load as load
from steadygrad.data.datasets import mnist as mnist
from steadygrad.data.datasets import npz as npz
from steadygrad.data.idx import read_idx as read_idx
from steadygrad.data.idx import write_idx as write_idx
from steadygrad.data.sequences import adding as adding
from steadygrad.data.sequences import first_token as first_token
from steadygrad.data.sources import cache_dir as cache_dir
from steadygrad.data.sources import download as download
from steadygrad.data.validate import check_features as check_features
from steadygrad.data.validate import check_labels as check_labels
from steadygrad.data.validate import infer_task as infer_task

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "Dataset",
    "adding",
    "cache_dir",
    "check_compatible",
    "check_features",
    "check_labels",
    "csv",
    "digits",
    "download",
    "fashion_mnist",
    "first_token",
    "from_arrays",
    "infer_task",
    "load",
    "mnist",
    "npz",
    "read_idx",
    "validate_targets",
    "write_idx",
]
