"""A model that has learnt a task whose answer has a location: Grad-CAM must point at it."""

import numpy as np
import pytest

import tb_cnnviz
from tb_cnnviz.explanations.trust import pointing_game


@pytest.mark.slow
@pytest.mark.every_backend
def test_gradcam_points_at_the_object_once_trained(trained, tmp_path):
    callback = tb_cnnviz.CNNViz(str(tmp_path), trained.probes, trained.labels, strict=True, max_channels=4,
                                model=trained.model)
    callback.log(0)
    last = tb_cnnviz.read_run(str(tmp_path)).event(0)
    accuracy = np.mean(np.asarray(last.predictions["predicted"]) == trained.labels)
    assert accuracy >= 0.9, f"the model did not learn the task (probe accuracy {accuracy})"
    assert pointing_game(last.gradcam, trained.masks) >= 0.9
    assert pointing_game(last.gradcam_pp, trained.masks) >= 0.9
    # hiding the 20 % of pixels Grad-CAM ranks highest must hurt the trained model
    assert last.faithfulness > 0.2
