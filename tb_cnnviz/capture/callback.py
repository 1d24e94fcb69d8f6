"""CNNViz: a Keras callback that logs what a CNN looks at and how its filters change.

Shaped like Keras' own callbacks: the constructor checks the options (`options`), set_model
plans what to log for the model (`plan`), the hooks only ask the schedule (`schedule`) whether
an event is due, and `recorder` makes it. The event file is opened at the first event and
closed at the end of fit and of evaluate, and by `close()`; the logdir's record of the run is
`run_state`'s.
"""

import dataclasses
import warnings

import keras

from tb_cnnviz import backend
from tb_cnnviz.capture.options import Options
from tb_cnnviz.capture.plan import make_plan
from tb_cnnviz.capture.recorder import EventRecorder
from tb_cnnviz.capture.run_state import RunState
from tb_cnnviz.capture.schedule import NoStepOfItsOwn, Schedule
from tb_cnnviz.capture.writer import EventWriter
from tb_cnnviz.storage import metadata


class CNNViz(keras.callbacks.Callback):
    """Logs Grad-CAM, activations, filters and filter statistics of probe images.

    Each event runs the probe images through the model once (one compiled function) and
    writes one record that the cnnviz TensorBoard tab and `tb_cnnviz.read_run` read (the first
    event of a callback also writes the run header, with the probe images).

    Args:
      logdir: directory of this run's event files (`run_name` adds a subdirectory); any path
        tf.io.gfile opens where TensorFlow is installed.
      run_name: a subdirectory of `logdir` for this run (logdir/run_name), as TensorBoard names runs.
      samples: probe images (N, H, W, C), 1 <= N <= 256, shaped like the model input; for a
        model with several inputs, a dict or list of arrays as the model takes them (image
        and metadata, say).
      labels: true class per probe: ints, a column of ints or one-hot rows; for a multi-label
        head, multi-hot rows (N, classes); for a segmentation head, masks (N, H, W) of class
        indices at the output's resolution.
      layers: conv layers (names or paths) whose feature maps and filters are logged; default
        the output conv of each stage (`tb_cnnviz.anatomy.stages`) and the Grad-CAM layer; "all" for
        every conv layer. Filter statistics cover every conv layer whatever this says.
      gradcam_layer: layer for Grad-CAM and Grad-CAM++; default the last conv layer that is not
        the output layer itself (a segmentation net's 1x1 classifier conv).
      every_n_epochs, every_n_steps: how often to log (give one; default every epoch). An
        event is also logged when training begins, unless `log_on_train_begin=False` or a fit
        resumes at the run's latest train event.
      class_names: one name per model class.
      target: Grad-CAM class: "predicted", "true" (needs labels; a multi-label probe's lowest
        true class), an int, or one per probe. A binary head has classes 0 and 1.
      max_channels: feature maps kept per layer (an int, or "all").
      max_layer_pixels: feature-map pixels kept per probe and layer ("auto", an int or None).
      log_weights: log filter images.
      faithfulness_fraction: share of top Grad-CAM pixels blurred by the faithfulness check.
      log_on_train_begin: log an event when fit begins.
      strict: raise errors while logging from a hook (fit, evaluate), instead of warning once
        and going on; `log()` itself always raises.
      head: what the output is: "softmax" (exclusive classes), "binary" (one logit or sigmoid
        unit, shown as classes 0 and 1), "multilabel" (independent sigmoids) or "segmentation"
        (per-pixel class scores (N, H, W, K)); default
        inferred from the output's activation, shape and compiled loss, and asked for where it
        cannot be told.
      output: the name or index of the output to explain, for a model with several.
      image_input: the input whose images are shown and explained, of several (a dict key, a
        list index or the input's name); default the only 4-D input.
      background_class: a segmentation head's class that target="predicted" passes over.
      gradcam_classes: how many of the most probable classes get Grad-CAM and Grad-CAM++ maps
        beside the target and the true class (the tab's class picker); with labels each probe
        has min(classes, gradcam_classes + 2) maps, one fewer without.
      masks, boxes: the probes' objects, where known: masks (N, H, W) of booleans at the
        input size, or boxes [y0, x0, y1, x1] (half-open, input pixels); each event then
        scores the maps with the pointing game and the energy on the object.
      trust_every: deletion and insertion AUC (38 passes of the probes) on every k-th
        train event of the run, counting the first, and on every eval event; None: eval events
        only. A resumed run counts the events before it (the every-k-th options all do).
      sanity_check: run `tb_cnnviz.sanity_check` (the cascading randomisation test, on a copy
        of the model) at every eval event.
      methods: the explanation methods whose maps of each probe's target class, and their trust
        figures, every event logs (`tb_cnnviz.explain` names the nine): any of them, "gradcam"
        among them. Grad-CAM and Grad-CAM++ maps of the other classes are logged whatever this
        says. The many-pass methods ("scorecam", "smoothgrad", "integrated_gradients") run
        at the events of `expensive_every`.
      expensive_every: the many-pass methods on every k-th train event, counting the first,
        and on every eval event; None: at the events that compute deletion and insertion
        (`trust_every`).
      reference: images (up to 1,024, shaped and structured as `samples`) among which each
        logged layer's filters find their top-activating examples; stored once per run. Default
        the probes, searched at every event; a reference set of its own is searched at every
        `filters_every`-th event of each mode, counting the first.
      feature_vis: how many of each logged layer's logged channels (the first ones) get an
        image that maximises them (activation maximisation, 128 steps), at every
        `filters_every`-th event of each mode, counting the first; 0: none.
      filters_every: see `reference` and `feature_vis`.
      max_example_filters: filters of a layer whose top examples one event stores; a wider
        layer's take turns, this many per event, so that events of wide backbones stay small
        (each filter's are then stored every ceil(filters / max_example_filters)-th time). None:
        every filter at every event.
      model: the model, for use outside fit/evaluate (a custom loop calling `log`).

    Raises:
      ValueError, TypeError: an option it cannot use, or (with `model`, else at set_model) a
        model it cannot explain; the message says what to give instead.
      RuntimeError: Keras runs on a backend other than TensorFlow, JAX and PyTorch.
    """

    def __init__(self, logdir, samples, labels=None, layers=None, gradcam_layer=None, every_n_epochs=None,
                 every_n_steps=None, *, class_names=None, target="predicted", max_channels=16,
                 max_layer_pixels="auto", log_weights=True, run_name=None, faithfulness_fraction=0.2,
                 log_on_train_begin=True, strict=False, head=None, output=None, image_input=None, background_class=0,
                 gradcam_classes=3, masks=None, boxes=None, trust_every=5, sanity_check=False,
                 methods=("gradcam", "gradcam_pp"), expensive_every=None, reference=None,
                 feature_vis=0, filters_every=5, max_example_filters=256, model=None):
        super().__init__()
        backend.current()
        given = locals()
        self.options = Options(**{field.name: given[field.name] for field in dataclasses.fields(Options)})
        self.logdir = self.options.logdir
        self._schedule = Schedule(self.options.every_n_epochs, self.options.every_n_steps,
                                  self.options.log_on_train_begin, counts_batches=self._counts_batches,
                                  read_step=self._optimizer_step, steps_per_batch=self._steps_per_batch)
        self._run_state = RunState(self.logdir)
        self._recorder = self._writer = None
        self._batch_steps = 1  # steps one train batch stands for (`_steps_of_a_batch`)
        self._reported = set()
        if model is not None:
            self.set_model(model)

    def set_model(self, model):
        self._schedule.set_model()
        self._batch_steps = self._steps_of_a_batch(model)
        if model is self.model and self._recorder is not None:
            return
        super().set_model(model)
        self._recorder = EventRecorder(self.options, make_plan(self.options, model), model, self._run_state,
                                       self._report)

    # -- Keras hooks: each asks the schedule whether an event is due --------------------------
    def on_train_begin(self, logs=None):
        self._batch_steps = self._steps_of_a_batch(self.model)  # compiled since set_model, in a custom loop
        step = self._schedule.step()
        resumed = self._schedule.resumes(step, self._run_state.latest)
        if resumed:  # the next event measures change from the weights it resumed from
            self._recorder.probe.continue_mode("train")
        self._log_safely("train", self._schedule.train_begin(step, resumed))

    def on_train_end(self, logs=None):
        self._log_safely("train", self._schedule.train_end())
        self.close()

    def on_epoch_begin(self, epoch, logs=None):
        self._schedule.epoch_begin()

    def on_epoch_end(self, epoch, logs=None):
        self._log_safely("train", self._schedule.epoch_end(epoch))

    def on_train_batch_begin(self, batch, logs=None):
        """Before the batch, so that Keras keeps batch-end hooks asynchronous where it can."""
        self._log_safely("train", self._schedule.batch_begin())

    def on_test_end(self, logs=None):
        """After evaluate (validation inside fit logs nothing of its own)."""
        in_fit = self._schedule.in_fit
        try:
            step = self._schedule.test_end()
        except NoStepOfItsOwn as error:
            self._report("eval", error.step, error)
            return
        self._log_safely("eval", step)
        if not in_fit:
            self.close()

    def close(self) -> None:
        """Closes the event file; a later event opens a new one."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- the step count -----------------------------------------------------------------------
    def _counts_batches(self):
        """True for a model without an optimizer (a custom loop that drives the hooks): its
        steps are the batches the hooks have seen."""
        return getattr(self.model, "optimizer", None) is None

    def _optimizer_step(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("the model has no optimizer to count steps: call log(step=...) with a step")
        return int(optimizer.iterations.numpy())

    @staticmethod
    def _steps_of_a_batch(model):
        """Steps one train batch hook stands for: 1 without an optimizer (counted batches)."""
        return 1 if getattr(model, "optimizer", None) is None else getattr(model, "steps_per_execution", 1) or 1

    def _steps_per_batch(self):
        # Read when a fit starts, never per batch: on JAX, Keras' `model` property copies the
        # training state into the model's variables, which the next step then reads back.
        return self._batch_steps

    # -- logging ------------------------------------------------------------------------------
    def _log_safely(self, mode, step):
        """Logs an event due at `step` (None: none is due) from a hook: an error is reported
        once and training goes on, unless strict."""
        if step is None:
            return
        try:
            self.log(step, mode)
        except Exception as error:  # noqa: BLE001 - a visualisation must not kill training
            self._report(mode, step, error)

    def _report(self, mode, step, error, failed=None):
        """Raises `error` if strict; else warns once per kind of error that `failed` (what failed
        and what became of it; default: the event, skipped)."""
        if self.options.strict:
            raise error
        key = (failed is None, type(error), str(error))
        if key not in self._reported:
            self._reported.add(key)
            failed = failed or f"logging the {mode} event at step {step} failed and was skipped"
            warnings.warn(f"tb_cnnviz: {failed} (pass strict=True to raise): {error!r}", stacklevel=3)

    def log(self, step: int | None = None, mode: str = "train") -> None:
        """Runs the probe images through the model and writes one event at `step`.

        Args:
          step: the event's step; default the optimizer's iteration count.
          mode: "train" or "eval": each has its own steps and its own filter-change series.

        Raises:
          RuntimeError: no model yet.
          ValueError: a bad mode, or no step given and no optimizer to count them.
        """
        if self._recorder is None:
            raise RuntimeError("no model yet: call set_model(model) or pass model= first")
        if mode not in metadata.MODES:
            raise ValueError(f"mode must be one of {metadata.MODES}, got {mode!r}")
        step = self._optimizer_step() if step is None else int(step)
        if not backend.current().is_chief(self.model):
            return
        if self._writer is None:
            self._writer = EventWriter(self.logdir)
        if self._schedule.logged(mode) is None:
            first = self._run_state.first_filters(mode, step, self._recorder.probe.current_filters)
            if first is not None:
                self._recorder.probe.set_first_filters(first)
        self._recorder.record(self._writer, mode, step)
        self._schedule.mark(mode, step)
        self._run_state.logged(mode, step)
