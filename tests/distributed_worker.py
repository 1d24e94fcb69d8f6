"""Trains the tests' small CNN under a tf.distribute strategy, CNNViz logging every step.

test_distribute runs it in subprocesses, since a process fixes its devices and its cluster
when TensorFlow starts, and imports `fit` for the single-device run it compares against.
Usage, from the repository root: python -m tests.distributed_worker mirrored|multiworker LOGDIR
INITIAL_WEIGHTS (multiworker: one worker of the cluster in TF_CONFIG).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import tb_cnnviz  # noqa: E402
from tests.helpers import small_cnn  # noqa: E402
from tb_cnnviz.datasets import shapes  # noqa: E402

BATCH = 32  # the global batch, split over the replicas
EPOCHS = 2  # of 2 batches: events at steps 0 to 4


def _data():
    images, labels, _ = shapes(64, size=32, seed=7)
    return images, labels


def _callback(logdir, images, labels):
    return tb_cnnviz.CNNViz(logdir, images[:6], labels[:6], every_n_steps=1, strict=True)


def fit(model, logdir):
    """Single device or MirroredStrategy; unshuffled, so every setting sees the same batches."""
    images, labels = _data()
    model.fit(images, labels, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
              callbacks=[_callback(logdir, images, labels)])


def custom_loop(strategy, model, logdir):
    """MultiWorkerMirroredStrategy, which Keras 3's fit does not run (keras-team/keras#20585):
    a custom loop calls the callback's hooks as fit would. It runs inside the strategy's scope,
    as custom loops often do, where any variable the chief alone made would be a collective op.

    Each worker takes every other image of a global batch, and the summed loss is divided by
    the global batch, so the all-reduced gradient is the single-device batch mean.
    """
    images, labels = _data()

    def dataset(context):
        return (tf.data.Dataset.from_tensor_slices((images, labels))
                .shard(context.num_input_pipelines, context.input_pipeline_id)
                .batch(context.get_per_replica_batch_size(BATCH)))

    batches = strategy.distribute_datasets_from_function(dataset)
    loss = keras.losses.SparseCategoricalCrossentropy(reduction="sum")

    @tf.function
    def train_step(x, y):
        def step(x, y):
            with tf.GradientTape() as tape:
                value = loss(y, model(x, training=True)) / BATCH
            gradients = tape.gradient(value, model.trainable_variables)
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))

        strategy.run(step, args=(x, y))

    callbacks = keras.callbacks.CallbackList([_callback(logdir, images, labels)], model=model)
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
        callbacks.on_train_begin()
        for epoch in range(EPOCHS):
            callbacks.on_epoch_begin(epoch)
            for batch, (x, y) in enumerate(batches):
                callbacks.on_train_batch_begin(batch)
                train_step(x, y)
                callbacks.on_train_batch_end(batch)
            callbacks.on_epoch_end(epoch)
        callbacks.on_train_end()


def main(setting, logdir, weights):
    if setting == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = small_cnn()
        model.load_weights(weights)
    if setting == "mirrored":
        fit(model, logdir)
    else:
        custom_loop(strategy, model, logdir)


if __name__ == "__main__":
    main(*sys.argv[1:])
