"""Raw public datasets to canonical Recordings and windows.

Importing this package registers every loader in `crosshar.registry.DATASETS`.
"""

from crosshar.data import readers  # noqa: F401  (registers every reader)
from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder
from crosshar.data.labels import LabelSpace
from crosshar.data.recording import Recording

__all__ = ["BadRows", "Dataset", "DataFolder", "LabelSpace", "Recording"]
