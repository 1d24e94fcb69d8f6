"""Run by tests/test_without_tensorflow.py inside a virtual environment that has tb-cnnviz with
JAX and PyTorch but no TensorFlow: trains a small CNN with CNNViz in `fit` under the backend
KERAS_BACKEND names, then fails if anything imported TensorFlow. Leaves for the `tb-cnnviz` command the checkpoints
that ModelCheckpoint wrote (LOGDIR_checkpoints) and the probes (LOGDIR_probes.npy).

    python without_tensorflow_run.py LOGDIR
"""

import sys

import keras
import numpy as np

import tb_cnnviz
from tb_cnnviz.datasets import shapes


def main(logdir):
    keras.utils.set_random_seed(0)
    images, labels, _ = shapes(128, size=32, seed=3)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = tb_cnnviz.CNNViz(logdir, images[:8], labels[:8], trust_every=1, strict=True)
    checkpoints = keras.callbacks.ModelCheckpoint(f"{logdir}_checkpoints/epoch_{{epoch}}.keras")
    model.fit(images, labels, epochs=2, batch_size=32, callbacks=[callback, checkpoints], verbose=0)
    np.save(f"{logdir}_probes.npy", images[:8])
    assert np.all(np.isfinite(tb_cnnviz.gradcam(model, images[:2])))
    loaded = [name for name in sys.modules if name == "tensorflow" or name.startswith("tensorflow.")]
    assert not loaded, f"TensorFlow was imported: {loaded[:5]}"
    print(keras.backend.backend(), "ok")


if __name__ == "__main__":
    main(sys.argv[1])
