"""Raw public datasets to canonical Recordings and windows.

Importing this package registers every loader in `crosshar.registry.DATASETS`.
"""

from crosshar.data import basicmotions, custom, hhar, motionsense, shoaib, uci, wisdm  # noqa: F401  (register)
from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder
from crosshar.data.labels import LabelSpace
from crosshar.data.recording import GRAVITY, Recording

__all__ = ["BadRows", "Dataset", "DataFolder", "LabelSpace", "Recording", "GRAVITY"]
