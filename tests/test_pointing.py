"""A model that has learnt a task whose answer has a location: Grad-CAM must point at it."""

import keras
import numpy as np

import tb_cnnviz
from demo.model import vgg_style
from tb_cnnviz.datasets import pointing_game, shapes


def test_gradcam_points_at_the_object_once_trained(tmp_path):
    keras.utils.set_random_seed(0)
    images, labels, _ = shapes(3000, size=40, seed=1)
    probes, probe_labels, probe_masks = shapes(32, size=40, seed=2)
    model = vgg_style(40)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = tb_cnnviz.CNNViz(str(tmp_path), probes, probe_labels, strict=True, max_channels=4)
    model.fit(images, labels, epochs=8, batch_size=32, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path))
    last = run.event(run.steps()[-1])
    accuracy = np.mean(np.asarray(last.predictions["predicted"]) == probe_labels)
    assert accuracy >= 0.9, f"the model did not learn the task (probe accuracy {accuracy})"
    assert pointing_game(last.gradcam, probe_masks) >= 0.9
    assert pointing_game(last.gradcam_pp, probe_masks) >= 0.9
    # hiding the 20 % of pixels Grad-CAM ranks highest must hurt the trained model
    assert last.faithfulness > 0.2
