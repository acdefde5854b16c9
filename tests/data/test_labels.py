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


def test_the_custom_data_guide_lists_the_whole_vocabulary():
    """docs/custom_data.md names every canonical activity a descriptor may map to, in VOCAB's order."""
    import re
    from pathlib import Path

    from crosshar.data.labels import VOCAB

    text = " ".join((Path(__file__).resolve().parents[2] / "docs" / "custom_data.md").read_text().split())
    listed = re.search(r"`crosshar\.data\.labels\.VOCAB`: (.*?)\. Map to", text).group(1).split(", ")
    assert tuple(listed) == VOCAB
