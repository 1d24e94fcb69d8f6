"""CNNViz: a Keras callback that logs what a CNN looks at and how its filters change."""

import io
import json
import numbers
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from tb_cnnviz import layers as layer_utils, metadata, probe as probe_lib, summary
from tb_cnnviz.metadata import tag

REFERENCE_FILE = "cnnviz_reference.npz"
# {mode: step of the latest event} of the run in a logdir, whichever process wrote it: a fit
# resumed at that train step does not write it again.
STATE_FILE = "cnnviz_state.json"
MAX_SAMPLES = 256
# Feature-map values one event may log (probes x logged maps x pixels). An event needs at most
# ~32 bytes of memory per value beyond the model's own forward pass (README, Reliability).
MAX_LOGGED_VALUES = 128 * 2**20
# Feature-map pixels per probe and layer that max_layer_pixels="auto" keeps (with an int
# max_channels): early high-resolution layers would otherwise dominate an event's size and time.
AUTO_LAYER_PIXELS = 10_000


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _kept_channels(max_channels, max_layer_pixels, map_pixels):
    """How many maps of a layer to log: max_channels, fewer for large maps so that a probe logs
    at most max_layer_pixels pixels of the layer (always at least one map)."""
    if max_layer_pixels is None or map_pixels is None:
        return max_channels
    budget = max(1, max_layer_pixels // map_pixels)
    return budget if max_channels == "all" else min(max_channels, budget)


def _spread(count, keep):
    """`keep` channel indices spread evenly over `count`, fixed for the whole run."""
    if keep == "all" or keep >= count:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, keep)})


def _map_pixels(shape):
    """Pixels of one feature map of a conv layer's output shape, or None if its size is dynamic."""
    height, width = shape[:2]
    return None if height is None or width is None else int(height * width)


def _is_chief(model):
    """Only one replica writes under multi-worker training: the chief, or worker 0."""
    strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if not cluster:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


class CNNViz(keras.callbacks.Callback):
    """Logs Grad-CAM, activations, filters and filter statistics of probe images.

    Each logging event runs the probe images through the model once (one compiled
    tf.function) and writes summaries that the cnnviz TensorBoard tab and
    `tb_cnnviz.reader` read. See the README for every option.
    """

    def __init__(
        self,
        logdir,
        samples,
        labels=None,
        layers=None,
        gradcam_layer=None,
        every_n_epochs=None,
        every_n_steps=None,
        *,
        class_names=None,
        target="predicted",
        max_channels=16,
        max_layer_pixels="auto",
        log_weights=True,
        run_name=None,
        faithfulness_fraction=0.2,
        log_on_train_begin=True,
        strict=False,
        model=None,
    ):
        super().__init__()
        if not isinstance(logdir, (str, os.PathLike)) or not str(logdir):
            raise ValueError(f"logdir must be a directory path, got {logdir!r}")
        self.log_dir = str(logdir) if run_name is None else os.path.join(str(logdir), str(run_name))
        self.samples = self._check_samples(samples)
        self.labels = self._check_labels(labels, len(self.samples))
        self.layer_names = [layers] if isinstance(layers, str) else (None if layers is None else list(layers))
        if self.layer_names is not None and not self.layer_names:
            raise ValueError("layers must name at least one conv layer (or be None for all of them)")
        self.gradcam_layer_name = gradcam_layer
        if every_n_epochs is not None and every_n_steps is not None:
            raise ValueError("give every_n_epochs or every_n_steps, not both")
        self.every_n_steps = None if every_n_steps is None else _positive_int(every_n_steps, "every_n_steps")
        self.every_n_epochs = (
            _positive_int(every_n_epochs, "every_n_epochs")
            if every_n_epochs is not None
            else (1 if every_n_steps is None else None)
        )
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.target = self._check_target(target)
        if max_channels != "all":
            max_channels = _positive_int(max_channels, 'max_channels (or "all")')
        self.max_channels = max_channels
        if max_layer_pixels == "auto":  # max_channels="all" asks for every channel
            max_layer_pixels = None if max_channels == "all" else AUTO_LAYER_PIXELS
        elif max_layer_pixels is not None:
            max_layer_pixels = _positive_int(max_layer_pixels, 'max_layer_pixels (or "auto" or None)')
        self.max_layer_pixels = max_layer_pixels
        self.log_weights = bool(log_weights)
        if not 0.0 < float(faithfulness_fraction) < 1.0:
            raise ValueError(f"faithfulness_fraction must be in (0, 1), got {faithfulness_fraction!r}")
        self.faithfulness_fraction = float(faithfulness_fraction)
        self.log_on_train_begin = bool(log_on_train_begin)
        self.strict = bool(strict)
        self._probe = None
        self._writer = None
        self._in_fit = False
        self._fit_step = 0  # steps counted by batch hooks during fit
        # mode -> the step of its latest event: hooks must not write an event twice (e.g. the
        # epoch-end event of the last epoch and on_train_end's); one entry per mode, so a long
        # run does not grow it.
        self._last_logged = {}
        # The latest train step logged or due (also where a fit started without an event of
        # its own): every_n_steps logs when a step enters a later block. Checked every batch.
        self._last_train_step = -1
        self._probes_logged = False
        self._reference_from = None  # where the filter-drift reference came from: "logdir" or "self"
        self._logdir_steps = None  # the logdir's state file as this process last wrote it
        self._reported = set()
        if model is not None:
            self.set_model(model)

    # -- validation ---------------------------------------------------------------------------
    @staticmethod
    def _check_samples(samples):
        array = probe_lib.check_image_batch(samples, "samples")
        if len(array) > MAX_SAMPLES:
            raise ValueError(f"give between 1 and {MAX_SAMPLES} probe samples, got {len(array)}")
        return array

    @staticmethod
    def _check_labels(labels, count):
        if labels is None:
            return None
        array = np.asarray(labels)
        if array.ndim == 2 and array.shape[1] == 1:  # a column of indices, as keras.datasets.cifar10 gives
            array = array[:, 0]
        elif array.ndim == 2:  # one-hot rows
            array = array.argmax(axis=1)
        if array.ndim != 1 or len(array) != count or not np.issubdtype(array.dtype, np.number):
            raise ValueError(
                f"labels must be {count} class indices (or one-hot rows), one per sample; got "
                f"shape {np.shape(labels)}"
            )
        if np.any(array != np.round(array)) or np.any(array < 0):
            raise ValueError("labels must be non-negative class indices")
        return array.astype(np.int64)

    def _check_target(self, target):
        if isinstance(target, str):
            if target not in ("predicted", "true"):
                raise ValueError(f'target must be "predicted", "true", an int or a list of ints, got {target!r}')
            if target == "true" and self.labels is None:
                raise ValueError('target="true" needs labels=')
            return target
        array = np.asarray(target)
        if not np.issubdtype(array.dtype, np.integer) or array.ndim > 1:
            raise ValueError(f'target must be "predicted", "true", an int or a list of ints, got {target!r}')
        if array.ndim == 1 and len(array) != len(self.samples):
            raise ValueError(f"target lists one class per sample: need {len(self.samples)}, got {len(array)}")
        if np.any(array < 0):
            raise ValueError(f"target classes must be non-negative, got {target!r}")
        return np.broadcast_to(array, (len(self.samples),)).astype(np.int64)

    # -- Keras hooks --------------------------------------------------------------------------
    def set_model(self, model):
        # Keras calls set_model when each fit/evaluate/predict builds its callback list, but not
        # for the validation inside fit: so a fit that was interrupted (no on_train_end) does not
        # leave a later evaluate() thinking it is validation.
        self._in_fit = False
        if model is self.model and self._probe is not None:
            return
        super().set_model(model)
        probe_lib.build_sequential(model, self.samples)
        probe_lib.check_model(model)
        probe_lib.check_image_shape(self.samples, model, "samples")
        convs = layer_utils.conv_layers(model)
        self._output_shapes = probe_lib.conv_output_shapes(model, convs, self.samples)
        self._probe = probe_lib.Probe(model, self._spec(model, convs))
        self._probes_logged = False

    def _spec(self, model, convs):
        classes = model.outputs[0].shape[-1]
        for name, values in (("labels", self.labels), ("target", None if isinstance(self.target, str) else self.target)):
            if values is not None and np.any(values >= classes):
                raise ValueError(f"{name} must be class indices below the model's {classes} classes")
        if self.class_names is not None and len(self.class_names) != classes:
            raise ValueError(f"class_names has {len(self.class_names)} names, the model has {classes} classes")
        chosen = list(convs) if self.layer_names is None else [
            layer_utils.resolve(model, convs, name, "layer") for name in self.layer_names
        ]
        chosen = [path for path in convs if path in set(chosen)]  # model order, no repeats
        gradcam_layer = (
            layer_utils.resolve(model, convs, self.gradcam_layer_name, "gradcam_layer")
            if self.gradcam_layer_name is not None
            else list(convs)[-1]
        )
        shapes = self._output_shapes
        channels = {
            p: _spread(shapes[p][-1], _kept_channels(self.max_channels, self.max_layer_pixels, _map_pixels(shapes[p])))
            for p in chosen
        }
        self._check_size(channels)
        first = list(convs)[0]
        rgb = first if layer_utils.effective_kernel(convs[first]).shape[2] in (1, 3) else None
        filter_channels = {}
        if self.log_weights:
            filter_channels = {  # filters are small: not limited by max_layer_pixels
                p: _spread(shapes[p][-1], 64 if p == rgb else self.max_channels) for p in chosen
            }
        return probe_lib.ProbeSpec(
            gradcam_layer=gradcam_layer,
            activation_channels=channels,
            filter_channels=filter_channels,
            rgb_filter_layer=rgb,
            stats=True,
            faithfulness_fraction=self.faithfulness_fraction,
        )

    def _check_size(self, channels):
        """Refuses, before any work, an event too big to hold in memory."""
        pixels = {p: _map_pixels(self._output_shapes[p]) for p in channels}
        sizes = {  # logged values per layer (layers with a dynamic map size cannot be told)
            p: len(self.samples) * pixels[p] * len(channels[p]) for p in channels if pixels[p] is not None
        }
        values = sum(sizes.values())
        if values > MAX_LOGGED_VALUES:
            biggest = max(sizes, key=sizes.get)
            raise ValueError(
                f"one event would log {values / 2**20:.0f} M feature-map values ({len(self.samples)} probes; "
                f"layer {biggest!r} alone {sizes[biggest] / 2**20:.0f} M), more than the "
                f"{MAX_LOGGED_VALUES // 2**20} M an event may hold (~32 bytes of memory each): lower "
                f"max_channels (now {self.max_channels!r}) or max_layer_pixels (now "
                f"{self.max_layer_pixels!r}), log fewer layers with layers=[...], or pass fewer samples"
            )

    def on_train_begin(self, logs=None):
        self._in_fit = True
        self._fit_step = self._hook_step()
        # A fit resumed at the step of the run's latest train event (written by the process
        # that saved the model): an event here would replace that one, with no change since a
        # previous event to show; the next event measures change from these weights instead.
        resumed = ("train" not in self._last_logged and self._fit_step > 0
                   and self._logdir_state().get("train") == self._fit_step)
        if resumed:
            self._probe.continue_series("train")
        if self.log_on_train_begin and not resumed:
            self._log_safely("train", self._fit_step)
        else:  # the first batch hook must not log the start step either
            self._last_train_step = max(self._last_train_step, self._fit_step)

    def on_train_end(self, logs=None):
        self._in_fit = False
        if self.every_n_steps:
            self._log_safely("train", self._hook_step(), every_n_steps=True)

    def on_epoch_begin(self, epoch, logs=None):
        if self.every_n_steps:  # an epoch's last execution may run fewer steps than the others
            self._fit_step = self._hook_step()

    def on_epoch_end(self, epoch, logs=None):
        if self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            self._log_safely("train", self._hook_step())

    def on_train_batch_begin(self, batch, logs=None):
        """Logs before the batch that follows every n-th step.

        Steps are counted here rather than read from the optimizer after every batch, which
        would make each step wait for the previous one; and a batch-begin hook leaves Keras'
        asynchronous dispatch of batch-end hooks on, on backends that offer it. When the count
        says an event is due, the event takes the optimizer's own count and counting goes on
        from it: a loss-scale optimizer (mixed precision) skips steps whose gradients overflowed.
        """
        if self.every_n_steps and self._starts_a_block(self._fit_step):
            self._fit_step = self._hook_step()
            self._log_safely("train", self._fit_step, every_n_steps=True)
            # tried: also where this worker does not write, or the event failed
            self._last_train_step = max(self._last_train_step, self._fit_step)
        # without an optimizer (a custom loop) the hooks run once per batch
        self._fit_step += 1 if self._counts_batches() else getattr(self.model, "steps_per_execution", 1) or 1

    def on_test_end(self, logs=None):
        if self._in_fit:  # validation inside fit sees the same weights as the train event
            return
        step = self._hook_step()
        if self._counts_batches() and self._last_logged.get("eval") == step:
            self._report("eval", step, ValueError(
                "the model has no optimizer and no train batch passed since the last eval event, so "
                "this one has no step of its own: call log(step, mode='eval') with its step"))
            return
        self._log_safely("eval", step)

    # -- logging ------------------------------------------------------------------------------
    def _current_step(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("the model has no optimizer to count steps: call log(step=...) with a step")
        return int(optimizer.iterations.numpy())

    def _counts_batches(self):
        """True for a model without an optimizer (a custom loop that drives the hooks): its
        steps are the batches the hooks have seen."""
        return getattr(self.model, "optimizer", None) is None

    def _hook_step(self):
        """The optimizer's step count, or the batches the hooks have seen (_counts_batches)."""
        return self._fit_step if self._counts_batches() else self._current_step()

    def _starts_a_block(self, step):
        """every_n_steps: whether `step` is in a later block of steps than the latest train event."""
        return step // self.every_n_steps > self._last_train_step // self.every_n_steps

    def _log_safely(self, mode, step, every_n_steps=False):
        """Logging from a hook: an error is reported once and training goes on (unless strict).

        every_n_steps: log only if `step` starts a new block of every_n_steps steps.
        """
        try:
            if every_n_steps and not self._starts_a_block(step):
                return
            if self._last_logged.get(mode) != step:
                self.log(step, mode)
        except Exception as exc:  # noqa: BLE001 - a visualisation must not kill training
            self._report(mode, step, exc)

    def _report(self, mode, step, exc):
        if self.strict:
            raise exc
        key = (type(exc), str(exc))
        if key not in self._reported:
            self._reported.add(key)
            warnings.warn(f"tb_cnnviz: logging the {mode} event at step {step} failed and "
                          f"was skipped (pass strict=True to raise): {exc!r}", stacklevel=3)

    def log(self, step=None, mode="train"):
        """Runs the probe images through the model and writes one event at `step`.

        step: defaults to the optimizer's iteration count; mode: "train" or "eval".
        """
        if self._probe is None:
            raise RuntimeError("no model yet: call set_model(model) or pass model= first")
        if mode not in metadata.MODES:
            raise ValueError(f"mode must be one of {metadata.MODES}, got {mode!r}")
        step = self._current_step() if step is None else int(step)
        if not _is_chief(self.model):
            return
        if self._writer is None:
            self._writer = summary.EventWriter(self.log_dir)
        if mode not in self._last_logged:
            self._start_mode(step, mode)
        result = self._probe(self.samples, self._targets(), series=mode)
        if not self._probes_logged:
            self._writer.write(self._probes_items(), step)
            self._probes_logged = True
        self._writer.write(self._event_items(result, mode), step)
        self._last_logged[mode] = step
        if mode == "train":
            self._last_train_step = max(self._last_train_step, step)
        self._save_logdir_state(mode, step)

    def _targets(self):
        if isinstance(self.target, np.ndarray):
            return self.target
        if self.target == "true":
            return self.labels
        return np.full(len(self.samples), -1)

    def _reference_path(self):
        return os.path.join(self.log_dir, REFERENCE_FILE)

    def _start_mode(self, step, mode):
        """Before this process's first event of `mode`. Filter drift is measured from the run's
        first event, kept in the logdir so that a resumed run keeps it; a train event at step 0
        in a logdir that holds a run starts the run again (and says so), an eval event keeps it."""
        restarts = mode == "train" and step == 0
        if self._reference_from == "self" or (self._reference_from == "logdir" and not restarts):
            return  # settled by this process's first event of the other mode
        path = self._reference_path()
        exists = tf.io.gfile.exists(path)
        if exists and step == 0:
            warnings.warn(
                f"tb_cnnviz: {self.log_dir} already holds a cnnviz run and this process counts steps "
                f"from 0 again, so its {mode} events replace the earlier ones at the same steps"
                f"{'' if mode == 'eval' else ' and filter drift is measured from now'}. To continue "
                f"that training, restore the optimizer with the weights (model.save() and "
                f"keras.models.load_model(), or a checkpoint of model and optimizer) so its step count "
                f"goes on; for a new run, use a new logdir or run_name=.", stacklevel=4)
        if exists and not restarts:
            with tf.io.gfile.GFile(path, "rb") as f:
                saved = np.load(io.BytesIO(f.read()))
                self._probe.set_reference({key: saved[key] for key in saved.files})
            self._reference_from = "logdir"
            return
        self._probe.set_reference()
        buffer = io.BytesIO()
        np.savez(buffer, **self._probe.reference())
        tf.io.gfile.makedirs(self.log_dir)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(buffer.getvalue())
        self._reference_from = "self"

    def _logdir_state(self):
        """{mode: step of the run's latest event} as the logdir's state file has it ({} if none)."""
        try:
            with tf.io.gfile.GFile(os.path.join(self.log_dir, STATE_FILE), "r") as f:
                state = json.loads(f.read())
        except (tf.errors.NotFoundError, ValueError):  # none yet, or cut short by a crash
            return {}
        return state if isinstance(state, dict) else {}

    def _save_logdir_state(self, mode, step):
        if self._logdir_steps is None:
            self._logdir_steps = self._logdir_state()
        self._logdir_steps[mode] = step
        with tf.io.gfile.GFile(os.path.join(self.log_dir, STATE_FILE), "w") as f:
            f.write(json.dumps(self._logdir_steps))

    def _probes_items(self):
        spec = self._probe.spec
        convs = self._probe.convs
        images = self.samples
        if images.shape[-1] not in (1, 3):
            images = images.mean(axis=-1, keepdims=True)
        value = summary.maps_value(
            images[:, None],
            labels=None if self.labels is None else self.labels.tolist(),
            class_names=self.class_names,
            num_classes=int(self.model.outputs[0].shape[-1]),
            model=self.model.name,
            layers=list(spec.activation_channels),
            channels=spec.activation_channels,
            filter_channels=spec.filter_channels,
            conv_layers={
                path: {"type": type(layer).__name__, "output_shape": list(self._output_shapes[path])}
                for path, layer in convs.items()
            },
            gradcam_layer=spec.gradcam_layer,
            rgb_filter_layer=spec.rgb_filter_layer,
            target=self.target if isinstance(self.target, str) else self.target.tolist(),
            faithfulness_fraction=spec.faithfulness_fraction,
            stat_names=list(metadata.STAT_NAMES),
        )
        return {tag(metadata.PROBES): (metadata.PROBES, value)}

    def _event_items(self, result, mode):
        """{tag: (kind, value)} of every summary of one event."""
        spec = self._probe.spec
        probabilities = result["probabilities"]
        predicted = probabilities.argmax(axis=1)
        target = result["target"]
        rows = np.arange(len(target))
        target_probability = probabilities[rows, target]
        drop = target_probability - result["masked_probability"]
        top = np.argsort(-probabilities, axis=1)[:, :5]
        items = {}
        index = {metadata.ACTIVATIONS: {}, metadata.FILTERS: {}}  # encoded headers of the step

        def add_maps(kind, maps, path=None, **fields):
            value = summary.maps_value(maps, **fields)
            items[tag(kind, mode, path)] = (kind, value)
            if path is None:
                index[kind] = value[0]
            else:
                index[kind][path] = value[0]

        for kind, key in ((metadata.GRADCAM, "gradcam"), (metadata.GRADCAM_PP, "gradcam++")):
            add_maps(kind, result[key][:, None, :, :, None], layer=spec.gradcam_layer)  # one (H, W, 1) map per probe
        for path, maps in result["activations"].items():
            add_maps(metadata.ACTIVATIONS, maps, path, channels=spec.activation_channels[path])
        for path, maps in result["filters"].items():
            view = "kernel" if path == spec.rgb_filter_layer else "mean_over_inputs"
            add_maps(metadata.FILTERS, maps, path, channels=spec.filter_channels[path], view=view)
        for path, stats in result["stats"].items():
            items[tag(metadata.STATS, mode, path)] = (metadata.STATS, summary.tensor_value(stats))
        items[tag(metadata.FAITHFULNESS, mode)] = (metadata.FAITHFULNESS, summary.tensor_value(drop.mean()))
        index[metadata.FAITHFULNESS] = float(drop.mean())
        # Readers take a step whose predictions are on disk as complete. The event is written
        # as one record, whole or not at all; runs written by earlier versions (a record per
        # summary) wrote predictions last for the same reason.
        items[tag(metadata.PREDICTIONS, mode)] = (metadata.PREDICTIONS, summary.header_value(
            predicted=predicted.tolist(),
            probability=probabilities[rows, predicted].tolist(),
            target=target.tolist(),
            target_probability=target_probability.tolist(),
            masked_probability=result["masked_probability"].tolist(),
            faithfulness_drop=drop.tolist(),
            label=None if self.labels is None else self.labels.tolist(),
            top_classes=top.tolist(),
            top_probabilities=np.take_along_axis(probabilities, top, axis=1).tolist(),
            **{metadata.STEP_INDEX: index},
        ))
        return items
