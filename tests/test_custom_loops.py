"""`log(step)` from each backend's own training loop, as Keras' guides write them ("Writing a
training loop from scratch" in TensorFlow, JAX and PyTorch): under KERAS_BACKEND, that
backend's loop trains a small CNN and logs every few steps; every event holds the weights the
model had at its step (a compiled probe that kept its first weights would fail here)."""

import keras
import numpy as np
import pytest

import tb_cnnviz
from tests.backend_tools import to_numpy
from tests.helpers import stats_tolerance

pytestmark = [pytest.mark.slow, pytest.mark.every_backend]
STEPS, EVERY, BATCH = 12, 4, 16


def small_model():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(keras.layers.MaxPooling2D()(x))
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(keras.layers.GlobalAveragePooling2D()(x)))


def batches(images, labels):
    for step in range(STEPS):
        start = step * BATCH % (len(images) - BATCH)
        yield step, images[start:start + BATCH], labels[start:start + BATCH]


def tensorflow_loop(model, images, labels, logged):
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(1e-2)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for step, x, y in batches(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_weights), model.trainable_weights)
        logged(step + 1)


def jax_loop(model, images, labels, logged):
    import jax

    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_and_updates(trainable, non_trainable, x, y):
        predicted, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return loss_fn(y, predicted), non_trainable

    gradients = jax.value_and_grad(loss_and_updates, has_aux=True)

    @jax.jit
    def train_step(state, x, y):
        trainable, non_trainable, optimizer_variables = state
        (_, non_trainable), grads = gradients(trainable, non_trainable, x, y)
        trainable, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads, trainable)
        return trainable, non_trainable, optimizer_variables

    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    for step, x, y in batches(images, labels):
        state = train_step(state, x, y)
        if (step + 1) % EVERY == 0:  # the guide's write-back, before the model is read
            for variables, values in zip((model.trainable_variables, model.non_trainable_variables), state):
                for variable, value in zip(variables, values):
                    variable.assign(value)
        logged(step + 1)


def torch_loop(model, images, labels, logged):
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    for step, x, y in batches(images, labels):
        loss = loss_fn(model(x, training=True), torch.as_tensor(y, dtype=torch.long))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        logged(step + 1)


LOOPS = {"tensorflow": tensorflow_loop, "jax": jax_loop, "torch": torch_loop}


def test_each_event_holds_the_weights_of_its_step(tmp_path, data):
    images, labels, _ = data
    probes = images[:4]
    model = small_model()
    callback = tb_cnnviz.CNNViz(str(tmp_path), probes, labels[:4], model=model, head="softmax", trust_every=1,
                                strict=True)
    expected = {}

    def logged(step):
        if step % EVERY == 0:
            callback.log(step)
            kernel = to_numpy(model.get_layer("c2").kernel)
            expected[step] = (np.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), axis=0),
                              to_numpy(model(probes, training=False)).argmax(axis=1))

    LOOPS[keras.backend.backend()](model, images, labels, logged)
    run = tb_cnnviz.read_run(str(tmp_path))
    assert run.steps() == [4, 8, 12]
    norms = [expected[step][0] for step in run.steps()]
    assert not np.allclose(norms[0], norms[-1], rtol=1e-3)  # training moved the filters
    for step in run.steps():
        event = run.event(step)
        norms = expected[step][0]
        np.testing.assert_allclose(event.stats("c2")["norm"], norms, rtol=1e-4, atol=stats_tolerance(norms))
        assert event.predictions["predicted"] == expected[step][1].tolist()
        assert np.all(np.isfinite(event.gradcam))
