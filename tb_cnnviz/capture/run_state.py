"""What a logdir keeps of its run for every process that writes it: the filters of the run's
first event (what filter drift is measured from, `FIRST_FILTERS_FILE`), its maps by each method
(what sanity_rank_corr compares with, `FIRST_MAPS_FILE`; `..._<method>.npz` for the methods
besides Grad-CAM) and the step of its latest event of each mode (`STATE_FILE`). Read and
written through `backend.files`, so remote logdirs work."""

import hashlib
import io
import json
import os
import warnings

import numpy as np

from tb_cnnviz.backend import files

FIRST_FILTERS_FILE = "cnnviz_reference.npz"  # the name existing logdirs hold it under
FIRST_MAPS_FILE = "cnnviz_first_maps.npz"  # Grad-CAM's class maps of the run's first event (sanity over training)
STATE_FILE = "cnnviz_state.json"  # {mode: step of the run's latest event, EVENTS: {mode: events the run holds}}
EVENTS = "events"


class RunState:
    def __init__(self, logdir: str):
        self.logdir = logdir
        self._first_filters_from = None  # "logdir" or "self", once this process has settled it
        self._latest = None  # the state file as this process last wrote it
        self._first_maps = {}  # method -> (classes, maps, source) once settled
        self._run_id = None  # a digest of the first filters' file: which start of the run kept maps belong to

    def latest(self, mode: str) -> int | None:
        """The step of the run's latest `mode` event as the state file has it, whichever
        process wrote it (None without one)."""
        return self._read_state().get(mode)

    def _read_state(self):
        try:
            state = json.loads(files.read_file(os.path.join(self.logdir, STATE_FILE)))
        except (FileNotFoundError, ValueError):  # none yet, or cut short by a crash
            return {}
        return state if isinstance(state, dict) else {}

    def events(self, mode: str) -> int:
        """How many `mode` events the run holds, whichever process logged them: the every-k-th
        work (trust_every, expensive_every, filters_every) counts them, so that a resumed run
        (a fit from a saved model, a replay finished by a second command) does it at the
        events an uninterrupted run would (0 in a state file written before the count)."""
        if self._latest is None:
            self._latest = self._read_state()
        counts = self._latest.get(EVENTS)
        count = counts.get(mode, 0) if isinstance(counts, dict) else 0
        return count if isinstance(count, int) and count >= 0 else 0

    def logged(self, mode: str, step: int) -> None:
        """Records an event of `mode` at `step` as the run's latest, and counts it."""
        count = self.events(mode)
        self._latest[mode] = step
        counts = self._latest.get(EVENTS)
        self._latest[EVENTS] = {**(counts if isinstance(counts, dict) else {}), mode: count + 1}
        files.write_file(os.path.join(self.logdir, STATE_FILE), json.dumps(self._latest).encode())

    def first_filters(self, mode: str, step: int, current_filters) -> dict | None:
        """Before this process's first event of `mode`: the filters {path: rows} to measure
        drift from, or None to keep the filters already settled by the other mode.

        Drift is measured from the run's first event, kept in the logdir so that a resumed run
        keeps it. A train event at step 0 in a logdir that holds a run starts the run again
        (and warns that it replaces earlier events); an eval event there keeps the run's first filters.
        current_filters: () -> {path: rows} of the model's weights now.
        """
        restarts = mode == "train" and step == 0
        if self._first_filters_from == "self" or (self._first_filters_from == "logdir" and not restarts):
            return None
        path = os.path.join(self.logdir, FIRST_FILTERS_FILE)
        exists = files.exists(path)
        if exists and step == 0:
            warnings.warn(
                f"tb_cnnviz: {self.logdir} already holds a cnnviz run and this process counts steps "
                f"from 0 again, so its {mode} events replace the earlier ones at the same steps"
                f"{'' if mode == 'eval' else ' and filter drift is measured from now'}. To continue "
                f"that training, restore the optimizer with the weights (model.save() and "
                f"keras.models.load_model(), or a checkpoint of model and optimizer) so its step count "
                f"goes on; for a new run, use a new logdir or run_name=.", stacklevel=4)
        if exists and not restarts:
            data = files.read_file(path)
            saved = np.load(io.BytesIO(data))
            first = {key: saved[key] for key in saved.files}
            self._first_filters_from, self._run_id = "logdir", hashlib.sha1(data).hexdigest()
            return first
        first = current_filters()
        self._first_maps = {}  # a run started again: its next event's maps are the first
        kept = self._latest if self._latest is not None else self._read_state()
        self._latest = {key: value for key, value in kept.items() if key != EVENTS}  # its events counted from none
        files.makedirs(self.logdir)
        self._first_filters_from, self._run_id = "self", hashlib.sha1(_save(path, **first)).hexdigest()
        return first

    def first_maps(self, classes: np.ndarray, maps: np.ndarray, source: str, method: str = "gradcam") -> tuple | None:
        """(classes, maps) of the run's first event that logged `method`, given this event's:
        Grad-CAM's of every class explained ((N, slots), (N, slots, h, w)), another method's of the
        targets ((N,), (N, h, w)). Kept in the logdir with the first filters (a resumed run keeps
        them; a run started again replaces them: a file kept from an earlier start, of a method
        that start logged, is replaced at the method's next event). `source` names the probes and
        the Grad-CAM layer; None if the kept maps are of another source (other probes, another layer)."""
        if method not in self._first_maps:
            path = os.path.join(self.logdir, first_maps_file(method))
            saved = None
            if self._first_filters_from != "self" and files.exists(path):
                saved = np.load(io.BytesIO(files.read_file(path)))
                kept = str(saved["run"]) if "run" in saved.files else None  # None: written before the field
                if kept != self._run_id and not (kept is None and method == "gradcam"):
                    saved = None
            if saved is None:
                _save(path, classes=classes, maps=maps, source=source, run=self._run_id or "")
                self._first_maps[method] = (classes, maps, source)
            else:
                self._first_maps[method] = (saved["classes"], saved["maps"], str(saved["source"]))
        first_classes, first_maps, first_source = self._first_maps[method]
        return (first_classes, first_maps) if first_source == source else None


def first_maps_file(method: str) -> str:
    """The name of the file of a method's maps at the run's first event that logged it."""
    return FIRST_MAPS_FILE if method == "gradcam" else FIRST_MAPS_FILE.replace(".npz", f"_{method}.npz")


def _save(path: str, **arrays) -> bytes:
    """Writes the arrays as an .npz file; returns its bytes."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files.write_file(path, buffer.getvalue())
    return buffer.getvalue()
