"""Shared test set-up: one torch thread (tiny models run faster so on 2 cores) and a session-wide
CROSSHAR_HOME in a temporary folder, so real datasets are prepared once per session and no test
writes into the working tree."""

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("crosshar_home")
    old = os.environ.get("CROSSHAR_HOME")
    os.environ["CROSSHAR_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("CROSSHAR_HOME", None)
    else:
        os.environ["CROSSHAR_HOME"] = old


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


def real_data_dir() -> Path | None:
    d = os.environ.get("CROSSHAR_DATA")
    return Path(d) if d and Path(d).is_dir() else None


@pytest.fixture
def real_data():
    """The real-data folder, or a skip saying how to enable these tests."""
    d = real_data_dir()
    if d is None:
        pytest.skip("real data not available: set CROSSHAR_DATA to the folder holding the datasets "
                    "(CI sets it to ../shared/data)")
    return d
