"""What a logdir keeps of its run for every process that writes it: the filters of the run's
first event (the filter-drift reference, `REFERENCE_FILE`), its Grad-CAM maps (the sanity
reference, `FIRST_MAPS_FILE`) and the step of its latest event of each mode (`STATE_FILE`). Read and written through tf.io.gfile, so remote logdirs work."""

import io
import json
import os
import warnings

import numpy as np
import tensorflow as tf

REFERENCE_FILE = "cnnviz_reference.npz"
FIRST_MAPS_FILE = "cnnviz_first_maps.npz"  # the class maps of the run's first event (sanity over training)
STATE_FILE = "cnnviz_state.json"  # {mode: step of the run's latest event}


class RunState:
    def __init__(self, logdir: str):
        self.logdir = logdir
        self._reference_from = None  # "logdir" or "self", once this process has settled it
        self._latest = None  # the state file as this process last wrote it
        self._first_maps = None  # (classes, maps) once settled

    def latest(self, mode: str) -> int | None:
        """The step of the run's latest `mode` event as the state file has it, whichever
        process wrote it (None without one)."""
        return self._read_state().get(mode)

    def _read_state(self):
        try:
            with tf.io.gfile.GFile(os.path.join(self.logdir, STATE_FILE), "r") as f:
                state = json.loads(f.read())
        except (tf.errors.NotFoundError, ValueError):  # none yet, or cut short by a crash
            return {}
        return state if isinstance(state, dict) else {}

    def logged(self, mode: str, step: int) -> None:
        """Records an event of `mode` at `step` as the run's latest."""
        if self._latest is None:
            self._latest = self._read_state()
        self._latest[mode] = step
        with tf.io.gfile.GFile(os.path.join(self.logdir, STATE_FILE), "w") as f:
            f.write(json.dumps(self._latest))

    def reference(self, mode: str, step: int, current_filters) -> dict | None:
        """Before this process's first event of `mode`: the filters {path: rows} to measure
        drift from, or None to keep the reference already settled by the other mode.

        Drift is measured from the run's first event, kept in the logdir so that a resumed run
        keeps it. A train event at step 0 in a logdir that holds a run starts the run again
        (and warns that it replaces earlier events); an eval event there keeps the reference.
        current_filters: () -> {path: rows} of the model's weights now.
        """
        restarts = mode == "train" and step == 0
        if self._reference_from == "self" or (self._reference_from == "logdir" and not restarts):
            return None
        path = os.path.join(self.logdir, REFERENCE_FILE)
        exists = tf.io.gfile.exists(path)
        if exists and step == 0:
            warnings.warn(
                f"tb_cnnviz: {self.logdir} already holds a cnnviz run and this process counts steps "
                f"from 0 again, so its {mode} events replace the earlier ones at the same steps"
                f"{'' if mode == 'eval' else ' and filter drift is measured from now'}. To continue "
                f"that training, restore the optimizer with the weights (model.save() and "
                f"keras.models.load_model(), or a checkpoint of model and optimizer) so its step count "
                f"goes on; for a new run, use a new logdir or run_name=.", stacklevel=4)
        if exists and not restarts:
            with tf.io.gfile.GFile(path, "rb") as f:
                saved = np.load(io.BytesIO(f.read()))
                reference = {key: saved[key] for key in saved.files}
            self._reference_from = "logdir"
            return reference
        reference = current_filters()
        self._first_maps = None  # a run started again: its next event's maps are the first
        buffer = io.BytesIO()
        np.savez(buffer, **reference)
        tf.io.gfile.makedirs(self.logdir)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(buffer.getvalue())
        self._reference_from = "self"
        return reference

    def first_maps(self, classes: np.ndarray, maps: np.ndarray, source: str) -> tuple | None:
        """(classes (N, slots), Grad-CAM maps (N, slots, h, w)) of the run's first event, given
        this event's: kept in the logdir with the filter reference (a resumed run keeps them,
        a run started again replaces them). `source` names the probes and the Grad-CAM layer;
        None if the kept maps are of another source (other probes, another layer)."""
        if self._first_maps is None:
            path = os.path.join(self.logdir, FIRST_MAPS_FILE)
            if self._reference_from == "self" or not tf.io.gfile.exists(path):
                buffer = io.BytesIO()
                np.savez(buffer, classes=classes, maps=maps, source=source)
                with tf.io.gfile.GFile(path, "wb") as f:
                    f.write(buffer.getvalue())
                self._first_maps = (classes, maps, source)
            else:
                with tf.io.gfile.GFile(path, "rb") as f:
                    saved = np.load(io.BytesIO(f.read()))
                    self._first_maps = (saved["classes"], saved["maps"], str(saved["source"]))
        first_classes, first_maps, first_source = self._first_maps
        return (first_classes, first_maps) if first_source == source else None
