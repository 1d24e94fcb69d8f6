"""When the callback logs an event: in `fit` (per epoch or every n steps), in `evaluate`, in a
custom loop that drives the hooks, and in a fit resumed from a saved model.

Pure Python, so that it is tested on its own. Each hook method answers with the step of the
event due now, or None; `mark` records an event that was logged. The step is read
(`read_step`, the optimizer's count) only where an event may be due, never on every batch:
reading it makes each training step wait for the previous one.
"""

from collections.abc import Callable


class NoStepOfItsOwn(ValueError):
    """An evaluation in a loop that counts batches, with no train batch since the last one."""

    def __init__(self, step: int):
        super().__init__(
            "the model has no optimizer and no train batch passed since the last eval event, so this one "
            "has no step of its own: call log(step, mode='eval') with its step")
        self.step = step


class Schedule:
    """Steps of due events for one callback.

    Steps are the optimizer's count; where the model has no optimizer (a custom loop that
    drives the hooks), the batches the hooks saw (`counts_batches`). Each mode logs a step at
    most once in a row (the last epoch's event and on_train_end's are one).
    """

    def __init__(self, every_n_epochs: int | None, every_n_steps: int | None, log_on_train_begin: bool,
                 counts_batches: Callable[[], bool], read_step: Callable[[], int],
                 steps_per_batch: Callable[[], int]):
        """counts_batches: whether steps are counted batches (no optimizer); read_step: the
        optimizer's count; steps_per_batch: steps one train batch hook stands for."""
        self.every_n_epochs, self.every_n_steps = every_n_epochs, every_n_steps
        self.log_on_train_begin = log_on_train_begin
        self._counts_batches, self._read_step, self._steps_per_batch = counts_batches, read_step, steps_per_batch
        self.in_fit = False  # inside fit: its validation is not an eval event
        self.counted = 0  # steps counted by the batch hooks
        self._logged = {}  # mode -> step of its latest event
        # every_n_steps logs when a step enters a later block than this one: the latest train
        # step logged or due (also where a fit started without an event of its own)
        self._last_train = -1

    def logged(self, mode: str) -> int | None:
        """The step of this callback's latest `mode` event, None before its first."""
        return self._logged.get(mode)

    def mark(self, mode: str, step: int) -> None:
        """An event of `mode` was logged at `step`."""
        self._logged[mode] = step
        if mode == "train":
            self._last_train = max(self._last_train, step)

    def _due(self, mode, step):
        return step if self._logged.get(mode) != step else None

    def _starts_a_block(self, step):
        return step // self.every_n_steps > self._last_train // self.every_n_steps

    def step(self) -> int:
        """The current step: the optimizer's count, or the batches counted without one."""
        return self.counted if self._counts_batches() else self._read_step()

    # -- hooks --------------------------------------------------------------------------------
    def set_model(self) -> None:
        """Keras calls set_model when each fit/evaluate/predict starts, but not for the
        validation inside fit: a fit that was interrupted (no on_train_end) must not leave a
        later evaluate() taken for validation."""
        self.in_fit = False

    def resumes(self, step: int, run_latest: Callable[[str], int | None]) -> bool:
        """Whether a fit starting at `step` resumes at the run's latest train event (written by
        the process that saved the model, `run_latest("train")`), which it must not log again."""
        return self.logged("train") is None and step > 0 and run_latest("train") == step

    def train_begin(self, step: int, resumed: bool) -> int | None:
        self.in_fit = True
        self.counted = step
        if self.log_on_train_begin and not resumed:
            return self._due("train", step)
        self._last_train = max(self._last_train, step)  # the first batch must not log it either
        return None

    def epoch_begin(self) -> None:
        if self.every_n_steps:  # an epoch's last execution may run fewer steps than the others
            self.counted = self.step()

    def epoch_end(self, epoch: int) -> int | None:
        if self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            return self._due("train", self.step())
        return None

    def batch_begin(self) -> int | None:
        """Before a train batch: the event due, if the counted step starts a block of
        every_n_steps. That event takes the optimizer's own count, and counting goes on from
        it: a loss-scale optimizer skips steps whose gradients overflowed."""
        due = None
        if self.every_n_steps and self._starts_a_block(self.counted):
            self.counted = step = self.step()
            due = self._due("train", step) if self._starts_a_block(step) else None
            self._last_train = max(self._last_train, step)  # also where the event is not written
        self.counted += self._steps_per_batch()
        return due

    def train_end(self) -> int | None:
        self.in_fit = False
        if self.every_n_steps:
            step = self.step()
            return self._due("train", step) if self._starts_a_block(step) else None
        return None

    def test_end(self) -> int | None:
        """The eval event due after an evaluation; raises NoStepOfItsOwn where its step would
        be the last eval event's, with no train batch between them to count."""
        if self.in_fit:  # validation inside fit sees the same weights as the train event
            return None
        step = self.step()
        if self._counts_batches() and self.logged("eval") == step:
            raise NoStepOfItsOwn(step)
        return self._due("eval", step)
