"""Where events come from: fit (per epoch or per n steps), evaluate, a custom loop, a resume."""

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_cnnviz
from tests.helpers import cosine_distance_np, filter_rows, small_cnn, stats_tolerance


@pytest.mark.slow
def test_every_n_steps_and_evaluate(tmp_path, data):
    images, labels, _ = data
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], labels[:4], every_n_steps=4, strict=True)
    model.fit(images, labels, epochs=2, batch_size=16, verbose=0, callbacks=[callback],
              validation_data=(images[:16], labels[:16]))
    model.evaluate(images[:16], labels[:16], verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path))
    assert run.steps("train") == [0, 4, 8, 12]
    assert run.steps("eval") == [12]  # validation inside fit is not an eval event
    eval_event = run.event(12, "eval")
    np.testing.assert_allclose(eval_event.gradcam, run.event(12).gradcam, atol=1e-6)


@pytest.mark.slow
def test_custom_training_loop(tmp_path, data):
    images, labels, _ = data
    model = small_cnn()
    optimizer = keras.optimizers.SGD(0.1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    callback = tb_cnnviz.CNNViz(str(tmp_path / "cnnviz"), images[:4], labels[:4], model=model)
    # The loop's own summaries (a default writer, recorded only when it says so) must neither
    # receive nor suppress cnnviz events.
    with tf.summary.create_file_writer(str(tmp_path / "own")).as_default(), tf.summary.record_if(False):
        callback.log(0)
        for step in range(1, 21):
            with tf.GradientTape() as tape:
                loss = loss_fn(labels[:32], model(images[:32], training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
            if step % 10 == 0:
                callback.log(step)
        callback.log(20, mode="eval")
    with pytest.raises(ValueError, match="no cnnviz data"):
        tb_cnnviz.read_run(str(tmp_path / "own"))
    run = tb_cnnviz.read_run(str(tmp_path / "cnnviz"))
    assert run.steps() == [0, 10, 20] and run.steps("eval") == [20]
    assert run.event(20).stats("conv4")["cos_to_first"].max() > 1e-5


@pytest.mark.slow
def test_resume_continues_the_step_axis_and_the_reference(tmp_path, data):
    images, labels, _ = data
    keras.utils.set_random_seed(2)
    model = small_cnn()
    model.fit(images[:1], labels[:1], epochs=1, verbose=0)  # build the optimizer state
    model.optimizer.iterations.assign(0)
    first_weights = filter_rows(model.get_layer("conv4"))
    logdir = str(tmp_path / "logs")
    model.fit(images, labels, epochs=1, batch_size=32, verbose=0,
              callbacks=[tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], strict=True)])
    saved = str(tmp_path / "model.keras")
    model.save(saved)
    saved_weights = filter_rows(model.get_layer("conv4"))
    step_3 = tb_cnnviz.read_run(logdir).event(3).stats("conv4")
    # a new process: a reloaded model and a new callback on the same logdir, which first
    # evaluates the model it resumes from, then trains on
    resumed = keras.models.load_model(saved)
    assert int(resumed.optimizer.iterations.numpy()) == 3
    callback = tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], strict=True)
    resumed.evaluate(images[:16], labels[:16], verbose=0, callbacks=[callback])
    resumed.fit(images, labels, epochs=1, batch_size=32, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(logdir)
    assert run.steps() == [0, 3, 6] and run.steps("eval") == [3]
    steps, figures = run.metrics()  # step 6, the run's third train event, is not a 5th: no curves
    assert [int(step) for step, value in zip(steps, figures["deletion_auc"]) if np.isfinite(value)] == [0]
    # step 3 keeps the first process's event (the resumed fit writes none at its start) ...
    np.testing.assert_array_equal(run.event(3).stats("conv4")["cos_to_prev"], step_3["cos_to_prev"])
    assert np.all(np.isfinite(step_3["cos_to_prev"]))
    stats = run.event(6).stats("conv4")
    now = filter_rows(resumed.get_layer("conv4"))
    to_first = np.clip(cosine_distance_np(now, first_weights), 0, 2)
    np.testing.assert_allclose(stats["cos_to_first"], to_first, atol=2e-6 + stats_tolerance(to_first))
    # ... and step 6 measures its change from step 3, across the two processes
    to_prev = np.clip(cosine_distance_np(now, saved_weights), 0, 2)
    np.testing.assert_allclose(stats["cos_to_prev"], to_prev, atol=2e-6 + stats_tolerance(to_prev))
    event_files = [f for f in os.listdir(logdir) if "tfevents" in f]
    # the resumed process appended new files, one for its evaluate and one for its fit (each closes its file)
    assert len(event_files) == 3


@pytest.mark.slow
def test_a_resumed_fit_logs_its_first_step_where_the_run_has_no_event(tmp_path, data):
    images, labels, _ = data
    model = small_cnn()
    logdir = str(tmp_path / "logs")
    model.fit(images, labels, epochs=1, batch_size=32, verbose=0,  # logs step 0 only
              callbacks=[tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], every_n_epochs=2, strict=True)])
    model.save(str(tmp_path / "model.keras"))
    resumed = keras.models.load_model(str(tmp_path / "model.keras"))
    resumed.fit(images, labels, epochs=1, batch_size=32, verbose=0,
                callbacks=[tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], every_n_epochs=2, strict=True)])
    assert tb_cnnviz.read_run(logdir).steps() == [0, 3]


@pytest.mark.slow
def test_a_failing_event_is_reported_once_and_training_goes_on(tmp_path, data, monkeypatch):
    images, labels, _ = data
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], labels[:4])
    callback.set_model(model)

    def broken(*args, **kwargs):
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(callback._recorder.probe, "_event", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(images, labels, epochs=3, batch_size=32, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 3
    reports = [w for w in caught if "tb_cnnviz" in str(w.message)]
    assert len(reports) == 1 and "step 0" in str(reports[0].message)
    strict = tb_cnnviz.CNNViz(str(tmp_path / "strict"), images[:4], strict=True, model=model)
    monkeypatch.setattr(strict._recorder.probe, "_event", broken)
    with pytest.raises(RuntimeError, match="probe exploded"):
        model.fit(images, labels, epochs=1, batch_size=32, verbose=0, callbacks=[strict])


@pytest.mark.slow
def test_evaluate_after_an_interrupted_fit_logs_an_eval_event(tmp_path, data):
    images, labels, _ = data
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], labels[:4], strict=True)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(images, labels, epochs=3, batch_size=32, verbose=0, callbacks=[callback, Interrupt()])
    model.evaluate(images[:16], labels[:16], verbose=0, callbacks=[callback])
    assert tb_cnnviz.read_run(str(tmp_path)).steps("eval") == [3]


@pytest.mark.slow
def test_train_and_eval_events_each_measure_change_from_their_own_previous_event(tmp_path, data):
    images, labels, _ = data
    model = small_cnn()
    optimizer = keras.optimizers.SGD(0.1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], labels[:4], model=model, strict=True)
    conv4 = model.get_layer("conv4")
    rows = {}

    def train(steps):
        for _ in range(steps):
            with tf.GradientTape() as tape:
                loss = loss_fn(labels[:32], model(images[:32], training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

    # train events at 0, 10, 20 and eval events at 15 (between them) and 20
    for step, mode, steps_before in ((0, "train", 0), (10, "train", 10), (15, "eval", 5), (20, "train", 5),
                                     (20, "eval", 0)):
        train(steps_before)
        callback.log(step, mode=mode)
        rows[mode, step] = filter_rows(conv4)
    run = tb_cnnviz.read_run(str(tmp_path))

    def cos_to_prev(step, mode):
        return run.event(step, mode).stats("conv4")["cos_to_prev"]

    assert np.all(np.isnan(cos_to_prev(0, "train"))) and np.all(np.isnan(cos_to_prev(15, "eval")))
    for (mode, step), (_, previous) in ((("train", 20), ("train", 10)), (("eval", 20), ("eval", 15))):
        expected = np.clip(cosine_distance_np(rows[mode, step], rows[mode, previous]), 0, 2)
        assert expected.max() > 1e-4  # the filters did change between the two events
        np.testing.assert_allclose(cos_to_prev(step, mode), expected, atol=2e-6)


@pytest.mark.slow
def test_log_on_train_begin_false_skips_the_first_event_with_every_n_steps(tmp_path, data):
    images, labels, _ = data
    model = small_cnn()
    for name, frequency, expected in (("steps", {"every_n_steps": 4}, [4, 8, 12]),
                                      ("epochs", {"every_n_epochs": 1}, [6, 12])):
        callback = tb_cnnviz.CNNViz(str(tmp_path / name), images[:4], labels[:4], log_on_train_begin=False,
                                    strict=True, **frequency)
        model.optimizer.iterations.assign(0)
        model.fit(images[:96], labels[:96], epochs=2, batch_size=16, verbose=0, callbacks=[callback])
        run = tb_cnnviz.read_run(str(tmp_path / name))
        assert run.steps() == expected
        steps, drift = run.filter_drift("conv4", "cos_to_first", mode="eval")
        assert steps.shape == (0,) and drift.shape == (16, 0)  # no eval events: an empty series


@pytest.mark.slow
@pytest.mark.parametrize("form", ["ints", "column", "one-hot"])
def test_labels_as_ints_a_column_or_one_hot_rows_log_the_same_classes(tmp_path, data, form):
    images, labels, _ = data
    given = {"ints": labels[:4], "column": labels[:4, None],  # keras.datasets.cifar10 gives (N, 1)
             "one-hot": np.eye(4)[labels[:4]]}[form]
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], given, target="true", model=small_cnn(), strict=True)
    callback.log(0)
    predictions = tb_cnnviz.read_run(str(tmp_path)).event(0).predictions
    assert predictions["label"] == labels[:4].tolist() == predictions["target"]


@pytest.mark.slow
def test_a_step_count_restarted_at_zero_warns_and_evaluation_keeps_the_reference(tmp_path, data):
    images, labels, _ = data
    logdir = str(tmp_path)
    trained = small_cnn()
    trained.fit(images, labels, epochs=1, batch_size=32, verbose=0,
                callbacks=[tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], strict=True)])
    reference = (tmp_path / "cnnviz_reference.npz").read_bytes()
    # a new process with the weights but not the optimizer: its count starts at 0 again
    restored = small_cnn()
    restored.set_weights(trained.get_weights())
    callback = tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], strict=True)
    with pytest.warns(UserWarning, match="counts steps from 0 again, so its eval events replace.*restore the optimizer"):
        restored.evaluate(images[:16], labels[:16], verbose=0, callbacks=[callback])
    assert (tmp_path / "cnnviz_reference.npz").read_bytes() == reference  # an evaluation starts no run
    run = tb_cnnviz.read_run(logdir)
    assert run.steps("eval") == [0] and run.steps() == [0, 3]
    assert run.filter_drift("conv4", "cos_to_first", mode="eval")[1].max() > 1e-4  # measured from the first event
    with pytest.warns(UserWarning, match="its train events replace.*filter drift is measured from now"):
        restored.fit(images, labels, epochs=1, batch_size=32, verbose=0, callbacks=[callback])
    assert (tmp_path / "cnnviz_reference.npz").read_bytes() != reference
    assert np.all(tb_cnnviz.read_run(logdir).event(0).stats("conv4")["cos_to_first"] < 1e-6)


@pytest.mark.slow
def test_hooks_driven_by_a_custom_loop_without_a_model_optimizer(tmp_path, data):
    images, labels, _ = data
    model = small_cnn()
    model.optimizer = None  # the loop's own optimizer takes the steps
    optimizer = keras.optimizers.SGD(0.1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], labels[:4], every_n_steps=2, strict=True)
    hooks = keras.callbacks.CallbackList([callback], model=model)
    hooks.on_train_begin()
    for batch in range(5):
        hooks.on_train_batch_begin(batch)
        with tf.GradientTape() as tape:
            loss = loss_fn(labels[:32], model(images[:32], training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        hooks.on_train_batch_end(batch)
    hooks.on_train_end()
    hooks.on_test_begin()
    hooks.on_test_end()
    hooks.on_test_begin()  # no train batch since the last evaluation: no step of its own
    with pytest.raises(ValueError, match="no step of its own: call log"):
        hooks.on_test_end()
    run = tb_cnnviz.read_run(str(tmp_path))
    assert run.steps() == [0, 2, 4]  # the batches the hooks saw
    assert run.steps("eval") == [5]


def test_the_batch_hooks_leave_the_models_training_state_alone(tmp_path, data):
    """Keras' `Callback.model` copies JAX's training state into the model's variables, which the
    next step then reads back: the batch hooks of a once-per-epoch callback never read it."""
    images, labels, _ = data

    class Counting(tb_cnnviz.CNNViz):
        reads = 0

        @property
        def model(self):
            Counting.reads += 1
            return super().model

        def on_train_batch_begin(self, batch, logs=None):
            before = Counting.reads
            super().on_train_batch_begin(batch, logs)
            batch_reads.append(Counting.reads - before)

    batch_reads = []
    model = small_cnn()
    callback = Counting(str(tmp_path), images[:4], labels[:4], strict=True)
    model.fit(images[:64], labels[:64], epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    assert batch_reads == [0] * 8
    assert Counting.reads > 0  # the events read it, so that they see the trained weights
    assert tb_cnnviz.read_run(str(tmp_path)).steps() == [0, 4, 8]


def _open_files_in(directory) -> list:
    """Paths under `directory` that this process holds open (Linux: /proc/self/fd)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since it was listed
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


@pytest.mark.slow
def test_the_event_file_is_closed_after_fit_evaluate_and_close(tmp_path, data):
    images, labels, _ = data
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(str(tmp_path / "fit"), images[:4], labels[:4], strict=True)
    model.fit(images[:32], labels[:32], epochs=1, batch_size=32, verbose=0, callbacks=[callback])
    assert _open_files_in(tmp_path) == []
    model.evaluate(images[:16], labels[:16], verbose=0, callbacks=[callback])
    assert _open_files_in(tmp_path) == []
    assert tb_cnnviz.read_run(str(tmp_path / "fit")).steps("eval") == [1]
    # a custom loop: the file is open between events until close()
    loop = tb_cnnviz.CNNViz(str(tmp_path / "loop"), images[:4], labels[:4], strict=True, model=model)
    loop.log(0)
    assert len(_open_files_in(tmp_path / "loop")) == 1
    loop.close()
    assert _open_files_in(tmp_path) == []
    loop.log(1)  # a later event opens a new file
    loop.close()
    assert tb_cnnviz.read_run(str(tmp_path / "loop")).steps() == [0, 1]
