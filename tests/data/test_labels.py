import numpy as np
import pytest

from crosshar.data.labels import LabelSpace, ancestors, is_under
from crosshar.errors import ConfigError

UCI = {"walking", "upstairs", "downstairs", "sitting", "standing", "lying"}
WISDM = {"walking", "jogging", "stairs", "sitting", "standing", "typing"}
MOTION = {"walking", "upstairs", "downstairs", "jogging", "sitting", "standing"}
HHAR = {"biking", "sitting", "standing", "walking", "upstairs", "downstairs"}


def test_hierarchy():
    assert ancestors("upstairs") == ["upstairs", "stairs"]
    assert is_under("sitting", "sitting&standing") and not is_under("sitting&standing", "sitting")


def test_crosshar4_on_uci_and_motion_is_unchanged():
    s = LabelSpace.named("crosshar4").intersect(UCI, MOTION)
    assert s.classes == ("walking", "upstairs", "downstairs", "sitting&standing")


def test_wisdm_merges_stairs():
    s = LabelSpace.named("crosshar4").intersect(UCI, WISDM)
    assert s.classes == ("walking", "stairs", "sitting&standing")
    y = s.encode(np.array(["upstairs", "downstairs", "stairs", "sitting", "lying", "", "walking"]))
    assert y.tolist() == [1, 1, 1, 2, -1, -1, 0]


def test_a_coarser_label_covers_the_classes_under_it():
    s = LabelSpace.named("crosshar4")
    assert s.covered("stairs") == (1, 2)
    assert s.covered("upstairs") == () and s.covered("sitting") == () and s.covered("lying") == () and s.covered("") == ()


def test_predictions_project_up_the_hierarchy():
    train = LabelSpace.named("crosshar4")
    ev = train.intersect(WISDM)
    assert train.project_to(ev).tolist() == [0, 1, 1, 2]


def test_classes_missing_in_a_dataset_are_dropped():
    s = LabelSpace.named("locomotion6").intersect(UCI, HHAR)
    assert s.classes == ("walking", "upstairs", "downstairs", "sitting", "standing")
    s2 = LabelSpace.named("locomotion6").intersect(WISDM)
    assert "lying" not in s2.classes and "stairs" in s2.classes


def test_bad_spaces():
    with pytest.raises(ConfigError):
        LabelSpace(("walking", "flying"))
    with pytest.raises(ConfigError):
        LabelSpace(("upstairs", "stairs"))
    with pytest.raises(ConfigError):
        LabelSpace.named("nope")
    with pytest.raises(ConfigError):
        LabelSpace.named("crosshar4").intersect({"typing"})
