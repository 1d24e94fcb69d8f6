"""Run in a subprocess under the KERAS_BACKEND it is given (tests/test_backends.py): builds one
of the test models, then either trains it a little and saves its weights (`save`), or loads
them and logs a train and an eval event of every kind with CNNViz (`log`).

    python -m tests.backend_run save|log MODEL WEIGHTS [LOGDIR]
"""

import sys

import keras

PROBES = 8


def data(size):
    from tb_cnnviz.datasets import shapes

    images, labels, _ = shapes(64, size=size, seed=5)
    return images, labels


def build(kind):
    """(model, image size, CNNViz options) of a test model."""
    if kind == "demo":
        from demo.model import vgg_style

        return vgg_style(32, widths=(8, 16, 32)), 32, {"sanity_check": True}
    if kind == "nested":  # a keras.applications backbone: residual adds, depthwise convs, batch norm
        backbone = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False,
                                                  weights=None)
        inputs = keras.Input((64, 64, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
        return keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="predictions")(pooled)), 64, {}
    if kind == "multi_output":  # class scores and a regression output; the first is explained
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
        x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
        pooled = keras.layers.GlobalAveragePooling2D()(x)
        classes = keras.layers.Dense(4, activation="softmax", name="classes")(pooled)
        size = keras.layers.Dense(1, name="size")(pooled)
        return keras.Model(inputs, {"classes": classes, "size": size}), 32, {"output": "classes"}
    raise ValueError(f"unknown model {kind!r}")


def save(kind, weights):
    keras.utils.set_random_seed(0)
    model, size, _ = build(kind)
    images, labels = data(size)
    if kind == "multi_output":
        model.compile("adam", {"classes": "sparse_categorical_crossentropy", "size": "mse"})
        targets = {"classes": labels, "size": images.mean(axis=(1, 2, 3))}
    else:
        model.compile("adam", "sparse_categorical_crossentropy")
        targets = labels
    model.fit(images, targets, epochs=2, batch_size=16, verbose=0)
    model.save_weights(weights)


def log(kind, weights, logdir):
    import tb_cnnviz

    model, size, options = build(kind)
    model.load_weights(weights)
    images, labels = data(size)
    callback = tb_cnnviz.CNNViz(logdir, images[:PROBES], labels[:PROBES], model=model, trust_every=1,
                                reference=images[PROBES:], strict=True, **options)
    callback.log(0)
    callback.log(0, mode="eval")


if __name__ == "__main__":
    verb, *arguments = sys.argv[1:]
    {"save": save, "log": log}[verb](*arguments)
