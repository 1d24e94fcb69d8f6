"""When events are due, without TensorFlow: the schedule driven as Keras' fit and evaluate (and
a custom loop) call the callback's hooks. The same cases run with real training in test_modes."""

import subprocess
import sys

import pytest

from tb_cnnviz.capture.schedule import NoStepOfItsOwn, Schedule


class Trainer:
    """A model's step count as fit drives it, and the events a callback with `schedule` logs."""

    def __init__(self, every_n_epochs=None, every_n_steps=None, log_on_train_begin=True, optimizer=True,
                 steps_per_execution=1, skipped=()):
        if every_n_steps is None:
            every_n_epochs = every_n_epochs or 1  # the callback's default
        self.optimizer, self.steps_per_execution = optimizer, steps_per_execution
        self.skipped = set(skipped)  # batches whose step a loss-scale optimizer skips
        self.step, self.batches, self.reads = 0, 0, 0
        self.events = {"train": [], "eval": []}
        self.schedule = Schedule(
            every_n_epochs, every_n_steps, log_on_train_begin, counts_batches=lambda: not self.optimizer,
            read_step=self._read, steps_per_batch=lambda: steps_per_execution if self.optimizer else 1)

    def _read(self):
        assert self.optimizer, "read the optimizer of a model that has none"
        self.reads += 1
        return self.step

    def _log(self, mode, step):
        if step is not None:
            self.events[mode].append(step)
            self.schedule.mark(mode, step)

    def fit(self, epochs, batches, run_latest_train=None, validation=False, interrupt_after=None):
        schedule = self.schedule
        schedule.set_model()
        step = schedule.step()
        resumed = schedule.resumes(step, {"train": run_latest_train}.get)
        self._log("train", schedule.train_begin(step, resumed))
        for epoch in range(epochs):
            schedule.epoch_begin()
            for _ in range(batches):
                self._log("train", schedule.batch_begin())
                if self.batches not in self.skipped:
                    self.step += self.steps_per_execution if self.optimizer else 0
                self.batches += 1
            if interrupt_after == epoch:
                return  # on_train_end never runs
            if validation:  # Keras validates before on_epoch_end
                assert schedule.test_end() is None  # validation inside fit is no eval event
            self._log("train", schedule.epoch_end(epoch))
        self._log("train", schedule.train_end())

    def evaluate(self):
        self.schedule.set_model()
        self._log("eval", self.schedule.test_end())


def test_the_schedule_imports_no_tensorflow():
    code = "import sys, tb_cnnviz.capture.schedule; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_every_epoch_logs_at_train_begin_and_each_epoch_end():
    trainer = Trainer()
    trainer.fit(epochs=3, batches=3)
    assert trainer.events == {"train": [0, 3, 6, 9], "eval": []}


def test_every_n_epochs():
    trainer = Trainer(every_n_epochs=2)
    trainer.fit(epochs=5, batches=3)
    assert trainer.events["train"] == [0, 6, 12]


def test_every_n_steps_with_validation_then_evaluate():
    trainer = Trainer(every_n_steps=4)
    trainer.fit(epochs=2, batches=6, validation=True)
    trainer.evaluate()
    assert trainer.events == {"train": [0, 4, 8, 12], "eval": [12]}


def test_every_n_steps_reads_the_optimizer_only_when_an_event_is_due():
    trainer = Trainer(every_n_steps=50)
    trainer.fit(epochs=2, batches=100)
    assert trainer.events["train"] == [0, 50, 100, 150, 200]
    assert trainer.reads <= 2 + 2 + 5 + 1  # train begin, epoch begins, one per event, train end


def test_every_n_steps_with_several_steps_per_execution():
    trainer = Trainer(every_n_steps=5, steps_per_execution=2)
    trainer.fit(epochs=1, batches=8)  # steps 0, 2, ..., 16
    assert trainer.events["train"] == [0, 6, 10, 16]  # the first step of each later block of 5


def test_events_due_by_the_count_take_the_optimizers_step():
    """A loss-scale optimizer skips steps whose gradients overflowed: the count runs ahead."""
    trainer = Trainer(every_n_steps=4, skipped={0, 1, 2})
    trainer.fit(epochs=1, batches=12)
    assert trainer.step == 9
    assert trainer.events["train"] == [0, 4, 8]


def test_log_on_train_begin_false():
    steps = Trainer(every_n_steps=4, log_on_train_begin=False)
    steps.fit(epochs=2, batches=6)
    epochs = Trainer(every_n_epochs=1, log_on_train_begin=False)
    epochs.fit(epochs=2, batches=6)
    assert steps.events["train"] == [4, 8, 12] and epochs.events["train"] == [6, 12]


def test_a_fit_resumed_at_the_runs_latest_train_event_does_not_log_it_again():
    trainer = Trainer()
    trainer.step = 3  # a model loaded with its optimizer
    trainer.evaluate()  # evaluating first does not change what the fit does
    trainer.fit(epochs=1, batches=3, run_latest_train=3)
    assert trainer.events == {"train": [6], "eval": [3]}


def test_a_fit_resumed_where_the_run_has_no_event_logs_its_first_step():
    trainer = Trainer(every_n_epochs=2)
    trainer.step = 3
    trainer.fit(epochs=1, batches=3, run_latest_train=0)
    assert trainer.events["train"] == [3]


def test_a_second_fit_does_not_log_the_step_it_ends_on_twice():
    trainer = Trainer(every_n_steps=3)
    trainer.fit(epochs=1, batches=3)
    trainer.fit(epochs=1, batches=3)
    assert trainer.events["train"] == [0, 3, 6]


def test_evaluate_after_an_interrupted_fit_is_an_eval_event():
    trainer = Trainer()
    trainer.fit(epochs=3, batches=3, interrupt_after=0)
    trainer.evaluate()
    assert trainer.events == {"train": [0], "eval": [3]}


def test_a_custom_loop_without_an_optimizer_counts_batches():
    trainer = Trainer(every_n_steps=2, optimizer=False)
    trainer.fit(epochs=1, batches=5)
    trainer.evaluate()
    assert trainer.events == {"train": [0, 2, 4], "eval": [5]}
    assert trainer.reads == 0
    with pytest.raises(NoStepOfItsOwn, match="no step of its own: call log") as raised:
        trainer.evaluate()  # no train batch since the last evaluation
    assert raised.value.step == 5
    trainer.fit(epochs=1, batches=1)  # one more batch: the next evaluation has a step again
    trainer.evaluate()
    assert trainer.events["eval"] == [5, 6]
