"""Event cost and fit overhead on each Keras backend, side by side in one run.

For each of TensorFlow, JAX and PyTorch (a subprocess each, KERAS_BACKEND set; `--backend NAME`
measures in this process, whose KERAS_BACKEND must be NAME), on the demo model (40x40, 6 convs, 8 probes, default options):
  - event time / the backend's floor (target: <= 3x): the floor is written here with the
    backend's own tools, one compiled function where the backend compiles (tf.function,
    jax.jit; PyTorch eager): a forward pass to every conv layer's output and the logits, the
    backward pass from the target logits to the input (through every conv layer), and one more
    forward pass (the faithfulness check's). The two are timed alternately, A B A B, and the
    figure is the median of the pair ratios;
  - the first event's time (tracing and compiling included), printed on its own;
then `bench.fit_overhead --models 4s` under the backend: the time in CNNViz's hooks on the
4-second epoch (TensorFlow's 4 s; target: <= 2 % of that backend's epoch), beside the floor of
those hooks: on that epoch's model, the floor of an event as above plus, at its share of the
events (1 / trust_every), the floor of deletion and insertion (the forward passes of their
images in the backend's own compiled forward pass, in the curves' passes), over the same epoch.

    python3 -m bench.backends [--backends tensorflow,jax,torch] [--repeats 30] [--epochs 6] [--json]
"""

import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench._common import Report, arguments, median_seconds
from tb_cnnviz import CNNViz

BACKENDS = ("tensorflow", "jax", "torch")
TRUST_EVERY = inspect.signature(CNNViz).parameters["trust_every"].default
# the curves' variants of the probes per middle step: deleted and inserted in the order of each
# default method's map and in the random order
CURVE_VARIANTS = 2 * (len(inspect.signature(CNNViz).parameters["methods"].default) + 1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def floor_function(model, conv_names):
    """(probes, targets) -> None: the floor of an event, in the backend's own tools."""
    import keras

    import numpy as np

    sub = keras.Model(model.inputs, [model.get_layer(name).output for name in conv_names] + [model.output])
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def run(x, targets):
            with tf.GradientTape() as tape:
                tape.watch(x)
                *_, scores = sub(x, training=False)
                score = tf.reduce_sum(tf.gather(scores, targets, batch_dims=1))
            return tape.gradient(score, x), model(x, training=False)

        return lambda x, targets: [t.numpy() for t in run(tf.constant(x), tf.constant(targets))]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def score_of(x, trainable, non_trainable, targets):
            (*_, scores), _ = sub.stateless_call(trainable, non_trainable, x, training=False)
            return jnp.sum(jnp.take_along_axis(scores, targets[:, None], axis=1))

        @jax.jit
        def run(x, trainable, non_trainable, targets):
            gradient = jax.grad(score_of)(x, trainable, non_trainable, targets)
            return gradient, sub.stateless_call(trainable, non_trainable, x, training=False)[0][-1]

        def call(x, targets):
            trainable = [v.value for v in sub.trainable_variables]
            non_trainable = [v.value for v in sub.non_trainable_variables]
            return [np.asarray(t) for t in run(jnp.asarray(x), trainable, non_trainable, jnp.asarray(targets))]

        return call
    import torch

    def call(x, targets):
        x = torch.as_tensor(x).requires_grad_(True)
        *_, scores = sub(x, training=False)
        score = scores.gather(1, torch.as_tensor(targets, dtype=torch.long)[:, None]).sum()
        (gradient,) = torch.autograd.grad(score, x)
        with torch.no_grad():
            again = model(x, training=False)
        return gradient.numpy(), again.numpy()

    return call


def forward_function(model):
    """images -> None: the model's forward pass, compiled with the backend's own tools."""
    import keras
    import numpy as np

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        run = tf.function(lambda x: model(x, training=False))
        return lambda x: run(tf.constant(x)).numpy()
    if backend == "jax":
        import jax

        run = jax.jit(lambda trainable, non_trainable, x: model.stateless_call(trainable, non_trainable, x,
                                                                                training=False)[0])
        return lambda x: np.asarray(run([v.value for v in model.trainable_variables],
                                        [v.value for v in model.non_trainable_variables], x))
    import torch

    def call(x):
        with torch.no_grad():
            return model(torch.as_tensor(x), training=False).numpy()

    return call


def hook_floor_figures(repeats):
    """{name: seconds} on the 4-second epoch's model: the floor of a plain event and of the
    curves' forward passes (`curves.DeletionInsertion`: the probes and their blurred copies,
    then CURVE_VARIANTS variants of the probes per middle step, in passes of at most the backend's
    pass_pixels)."""
    import keras
    import numpy as np

    from bench.fit_overhead import MODELS
    from tb_cnnviz.datasets import shapes
    from tb_cnnviz import backend
    from tb_cnnviz.explanations import trust

    make_model, size, *_ = MODELS["4s"]
    keras.utils.set_random_seed(0)
    model = make_model()
    probes, _, _ = shapes(8, size=size, seed=2)
    event = floor_function(model, [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)])
    targets = np.zeros(len(probes), np.int32)
    forward = forward_function(model)
    per_pass = max(1, backend.current().pass_pixels // (CURVE_VARIANTS * len(probes) * size * size))
    passes = [np.tile(probes, (CURVE_VARIANTS * len(steps), 1, 1, 1))
              for steps in np.array_split(np.arange(1, trust.CURVE_STEPS), -(-(trust.CURVE_STEPS - 1) // per_pass))]
    ends = np.concatenate([probes, probes])

    def curves_floor():
        for images in [ends, *passes]:
            forward(images)

    return {"event floor 4s": median_seconds(lambda: event(probes, targets), repeats),
            "curves floor 4s": median_seconds(curves_floor, max(3, repeats // 3))}


def event_figures(repeats):
    """{name: value} of this process's backend: event / floor, the first event, the medians."""
    import keras
    import numpy as np

    from demo.model import vgg_style
    from tb_cnnviz.datasets import SHAPE_NAMES, shapes

    keras.utils.set_random_seed(0)
    model = vgg_style(40)
    model.compile("adam", "sparse_categorical_crossentropy")
    probes, labels, _ = shapes(8, size=40, seed=2)
    callback = CNNViz(tempfile.mkdtemp(prefix="cnnviz_bench_"), probes, labels, class_names=SHAPE_NAMES, model=model,
                      trust_every=10**6)  # plain events: the curves are bench/trust_cost.py's
    floor = floor_function(model, [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)])
    targets = np.zeros(len(probes), np.int32)
    start = time.perf_counter()
    callback.log(1)  # the first event: tracing and compiling
    first = time.perf_counter() - start
    floor(probes, targets)
    pairs, steps = [], iter(range(2, 10**6))
    for _ in range(repeats):
        start = time.perf_counter()
        floor(probes, targets)
        middle = time.perf_counter()
        callback.log(next(steps))
        pairs.append((middle - start, time.perf_counter() - middle))
    return {"ratio": statistics.median(event / base for base, event in pairs), "first": first,
            "floor": statistics.median(base for base, _ in pairs), "event": statistics.median(e for _, e in pairs)}


def in_subprocess(backend, *arguments):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, *arguments], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} under {backend} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def main():
    parser = arguments(__doc__)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=6, help="of the 4-second epoch, per setting and round")
    parser.add_argument("--backend", help="measure the events in this process, which runs Keras on this backend "
                                          "(KERAS_BACKEND), and print them as JSON")
    args = parser.parse_args()
    if args.backend:
        import keras

        if keras.backend.backend() != args.backend:
            parser.error(f"--backend {args.backend} in a process whose Keras runs on {keras.backend.backend()}: "
                         f"set KERAS_BACKEND={args.backend}")
        print(json.dumps({**event_figures(args.repeats), **hook_floor_figures(args.repeats)}))
        return
    report = Report(args.json)
    for backend in args.backends.split(","):
        found = json.loads(in_subprocess(backend, "-m", "bench.backends", "--backend", backend,
                                         "--repeats", str(args.repeats)).splitlines()[-1])
        report.say(f"{backend}: demo model, 8 probes: floor {found['floor'] * 1e3:.1f} ms, event "
                   f"{found['event'] * 1e3:.1f} ms (medians of {args.repeats} alternating pairs); first event "
                   f"{found['first']:.2f} s (tracing and compiling)")
        report.figure(f"event / floor, {backend}", found["ratio"], 3, f"{backend}: event / floor (median of pair ratios)")
        report.figure(f"first event s, {backend}", found["first"], None, f"{backend}: first event, seconds")
        overhead = in_subprocess(backend, "-m", "bench.fit_overhead", "--models", "4s", "--epochs", str(args.epochs),
                                 "--json")
        epoch = None
        for line in overhead.splitlines():
            figure = json.loads(line)
            if figure["name"].startswith("epoch s"):
                epoch = figure["value"]
                continue
            limit = None if figure["target"] == "-" else float(figure["target"].split()[-1])
            report.figure(f"{figure['name']}, {backend}", figure["value"], limit, f"{backend}: {figure['name']}")
        floor = found["event floor 4s"] + found["curves floor 4s"] / TRUST_EVERY
        report.say(f"{backend}: 4-second epoch's model: epoch {epoch:.2f} s; floor of a plain event "
                   f"{found['event floor 4s'] * 1e3:.1f} ms, of the curves' forward passes "
                   f"{found['curves floor 4s'] * 1e3:.1f} ms (every {TRUST_EVERY}th event)")
        report.figure(f"hooks' floor %, {backend}", 100 * floor / epoch, None,
                      f"{backend}: the floor of the hooks, % of an epoch")


if __name__ == "__main__":
    main()
