"""Run by tests/test_jax_distribution.py under KERAS_BACKEND=jax with two forced CPU devices:
`fit` trains with `keras.distribution.DataParallel` over both and CNNViz logging every 2 steps,
then saves the weights; `log` loads them on one device and logs one event at STEP.

    python -m tests.jax_distributed_run fit|log LOGDIR WEIGHTS
"""

import sys

import jax
import keras

import tb_cnnviz
from tb_cnnviz.datasets import shapes

STEP = 4  # fit's last step: 64 images in batches of 16


def model_and_data():
    images, labels, _ = shapes(64, size=32, seed=3)
    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model, images, labels


def fit(logdir, weights):
    assert len(jax.devices()) == 2, jax.devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    model, images, labels = model_and_data()
    callback = tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], every_n_steps=2, trust_every=1, strict=True)
    model.fit(images, labels, epochs=1, batch_size=16, callbacks=[callback], verbose=0)
    assert int(model.optimizer.iterations.numpy()) == STEP
    model.save_weights(weights)


def log(logdir, weights):
    model, images, labels = model_and_data()
    model.load_weights(weights)
    tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], model=model, trust_every=1, strict=True).log(STEP)


if __name__ == "__main__":
    verb, logdir, weights = sys.argv[1:]
    {"fit": fit, "log": log}[verb](logdir, weights)
