"""One event of a big configuration in a fresh process: 224x224 probes, a 2,048-channel layer,
max_channels="all", max_layer_pixels=None. Prints JSON: logged values, peak memory above the model's own forward
pass, and the worst activation error relative to each map's range. From the repository root:
python -m tests.huge_event LOGDIR PROBES"""

import json
import os
import resource
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tb_cnnviz  # noqa: E402


def peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def big_model():
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="stem")(inputs)
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="mid")(x)
    x = keras.layers.Conv2D(2048, 1, strides=8, activation="relu", name="wide")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def main(logdir, count):
    model = big_model()
    images = np.random.default_rng(0).random((count, 224, 224, 3), np.float32)
    wide = keras.Model(model.inputs, model.get_layer("wide").output)
    truth = wide.predict(images, batch_size=count, verbose=0)  # the model's forward on every probe
    before = peak_bytes()
    tb_cnnviz.CNNViz(logdir, images, max_channels="all", max_layer_pixels=None, model=model, strict=True).log(0)
    extra = peak_bytes() - before
    logged = tb_cnnviz.read_run(logdir).event(0).activations("wide")[0]  # (count, 2048, 7, 7)
    truth = truth.transpose(0, 3, 1, 2)
    span = truth.max(axis=(2, 3)) - truth.min(axis=(2, 3))
    error = np.abs(logged - truth).max(axis=(2, 3)) / np.where(span > 0, span, 1)
    values = count * sum(int(np.prod(model.get_layer(n).output.shape[1:])) for n in ("stem", "mid", "wide"))
    print(json.dumps({"values": values, "extra_peak_bytes": extra, "shape": list(logged.shape),
                      "max_error_of_range": float(error.max())}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
