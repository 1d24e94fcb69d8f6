"""What a logdir keeps of its run for every process that writes it: the filters of the run's
first event (what filter drift is measured from, `FIRST_FILTERS_FILE`), its maps by each method
(what sanity_rank_corr compares with, `FIRST_MAPS_FILE`; `..._<method>.npz` for the methods
besides Grad-CAM), and of each mode the step of its latest event and the steps of its events
(`STATE_FILE`; what the every-k-th options count). Read and written through `backend.files`, so
remote logdirs work."""

import bisect
import hashlib
import io
import json
import os
import warnings

import numpy as np

from tb_cnnviz.backend import files
from tb_cnnviz.storage.metadata import MODES

FIRST_FILTERS_FILE = "cnnviz_reference.npz"  # the name existing logdirs hold it under
FIRST_MAPS_FILE = "cnnviz_first_maps.npz"  # Grad-CAM's class maps of the run's first event (sanity over training)
# {mode: step of the run's latest event, STEPS: {mode: its events' steps as `step_runs`}}
STATE_FILE = "cnnviz_state.json"
STEPS = "steps"
MAX_STEPS = 10**7  # events of a mode a state file may hold; more: damaged


class RunState:
    def __init__(self, logdir: str):
        self.logdir = logdir
        self._first_filters_from = None  # "logdir" or "self", once this process has settled it
        self._steps = {}  # mode -> the run's steps of that mode, sorted, once read (or started again)
        self._own_steps = {mode: set() for mode in MODES}  # logged by this process
        self._written = set()  # modes whose steps this process writes: those it logged (all once it restarts the run)
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

    def event_index(self, mode: str, step: int) -> int:
        """The place of an event of `mode` at `step` among the run's events of that mode in step
        order, whichever process logged them: the every-k-th work (trust_every, expensive_every,
        filters_every) counts it, so that a resumed run (a fit from a saved model, a replay run
        again) and a step logged again (a fit resumed from an earlier backup) do it at the events
        an uninterrupted run would. A state file of an earlier version holds no steps: counted
        from this process's first event."""
        if mode not in self._steps:
            held = self._read_state().get(STEPS)
            self._steps[mode] = run_steps(held.get(mode) if isinstance(held, dict) else None)
        return bisect.bisect_left(self._steps[mode], step)

    def logged(self, mode: str, step: int) -> None:
        """Records an event of `mode` at `step`: that mode's latest, and among its steps. The
        file is read again first: another process may log the other mode (an evaluator)."""
        place = self.event_index(mode, step)
        steps = self._steps[mode]
        if place == len(steps) or steps[place] != step:
            steps.insert(place, step)
        self._own_steps[mode].add(step)
        self._written.add(mode)
        state = self._read_state()
        held = state.get(STEPS)
        state[mode] = step
        state[STEPS] = {**(held if isinstance(held, dict) else {}),
                        **{written: step_runs(self._steps[written]) for written in self._written}}
        files.write_file(os.path.join(self.logdir, STATE_FILE), json.dumps(state).encode())

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
        # and its events counted from this process's own
        self._steps = {mode: sorted(self._own_steps[mode]) for mode in MODES}
        self._written = set(MODES)
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


def step_runs(steps: list) -> list:
    """[[first, stride, count], ...] of sorted steps: an event every k steps is one run, so the
    state file, written at every event, stays small over a long run."""
    runs = []
    for step in steps:
        if runs and (runs[-1][2] == 1 or step - runs[-1][0] == runs[-1][1] * runs[-1][2]):
            runs[-1][1] = step - runs[-1][0] if runs[-1][2] == 1 else runs[-1][1]
            runs[-1][2] += 1
        else:
            runs.append([step, 0, 1])
    return runs


def run_steps(runs) -> list:
    """The sorted steps of `step_runs`' runs; [] for anything else (a state file of an earlier
    version, or damaged)."""
    try:
        if sum(count for _, _, count in runs) > MAX_STEPS:
            return []
        return sorted({first + stride * place for first, stride, count in runs for place in range(count)})
    except (TypeError, ValueError):
        return []


def first_maps_file(method: str) -> str:
    """The name of the file of a method's maps at the run's first event that logged it."""
    return FIRST_MAPS_FILE if method == "gradcam" else FIRST_MAPS_FILE.replace(".npz", f"_{method}.npz")


def _save(path: str, **arrays) -> bytes:
    """Writes the arrays as an .npz file; returns its bytes."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files.write_file(path, buffer.getvalue())
    return buffer.getvalue()
