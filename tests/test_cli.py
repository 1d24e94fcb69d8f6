"""The `tb-cnnviz` command, run for real in a subprocess: `replay` of the checkpoints that
keras.callbacks.ModelCheckpoint wrote over 3 epochs, read back and compared with the checkpoints
loaded here; `explain` of an image folder of real photographs (skimage.data) in class folders,
compared with keras.utils.image_dataset_from_directory; `serve` answering with the plugin; an
interrupted replay that the same command finishes; and each bad input, told in one line."""

import json
import re
import shutil
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import tb_cnnviz
from tb_cnnviz.cli.images import read_images
from tb_cnnviz.cli.models import epochs_in_names
from tb_cnnviz.datasets import SHAPE_NAMES, shapes, training_shapes
from tb_cnnviz.storage.metadata import METHODS
from tests.browser_helpers import assert_no_tab_fault, console_errors, open_tab, wait_ready
from tests.helpers import cosine_distance_np, filter_rows, small_cnn, stats_tolerance
from tests.http_api import Api
from tests.polling import wait_for
from tests.tensorboard_process import checkout_env, free_port

EPOCHS, BATCH, TRAIN_IMAGES = 3, 32, 600
STEPS_PER_EPOCH = -(-TRAIN_IMAGES // BATCH)
STEPS = [STEPS_PER_EPOCH * epoch for epoch in range(1, EPOCHS + 1)]
# Each photograph in a format image_dataset_from_directory reads, in two class folders.
PHOTOGRAPHS = {"animals": [("chelsea", "jpg"), ("cat", "png"), ("astronaut", "bmp")],
               "things": [("coffee", "jpeg"), ("rocket", "gif"), ("camera", "png")]}
# of 255: TensorFlow's JPEG decoder and Pillow's (their IDCT and chroma upsampling) differ by up to
# this per pixel: 3.5 measured here at 32 px, 4.0 at 224 px; their builds vary by machine
JPEG_DECODERS = 8.0


def command(*arguments, timeout=300):
    """Runs `python -m tb_cnnviz` (the console script's code) with this checkout's package."""
    return subprocess.run([sys.executable, "-m", "tb_cnnviz", *map(str, arguments)], capture_output=True, text=True,
                          env=checkout_env(), timeout=timeout)


def shape_folders(path, count=24):
    """PNG files of `count` shapes (tb_cnnviz.datasets) in a folder per class; (images, labels) as
    read back: pixels / 255 in folder order."""
    images, labels, _ = shapes(count, size=40, seed=2)
    pixels = np.round(images * 255).astype(np.uint8)
    for index, (image, label) in enumerate(zip(pixels, labels)):
        folder = path / SHAPE_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:02d}.png")
    order = sorted(range(count), key=lambda index: (sorted(SHAPE_NAMES).index(SHAPE_NAMES[labels[index]]), index))
    return pixels[order].astype(np.float32) / 255, np.array([sorted(SHAPE_NAMES).index(SHAPE_NAMES[labels[i]])
                                                             for i in order])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The demo's model trained for 3 epochs with ModelCheckpoint writing whole models and weights."""
    from demo.model import vgg_style

    path = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    images, labels, _ = training_shapes(TRAIN_IMAGES, size=40)
    model = vgg_style(40, classes=len(SHAPE_NAMES))
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    checkpoints = [keras.callbacks.ModelCheckpoint(str(path / "models" / "epoch_{epoch:02d}.keras")),
                   keras.callbacks.ModelCheckpoint(str(path / "weights" / "w_{epoch:02d}.weights.h5"),
                                                   save_weights_only=True)]
    model.fit(images, labels, epochs=EPOCHS, batch_size=BATCH, verbose=0, callbacks=checkpoints)
    model.save(path / "model.keras")
    probes, probe_labels = shape_folders(path / "shapes")
    return path, probes, probe_labels


@pytest.fixture(scope="module")
def replayed(trained, tmp_path_factory):
    path, _, _ = trained
    logdir = tmp_path_factory.mktemp("replayed") / "run"
    done = command("replay", path / "models", "--images", path / "shapes", "--logdir", logdir, "--rescale", "1/255")
    assert done.returncode == 0, done.stderr
    return logdir, done


@pytest.mark.slow
@pytest.mark.every_backend
def test_replay_logs_a_train_event_per_checkpoint_at_its_step(trained, replayed):
    path, probes, labels = trained
    logdir, done = replayed
    assert f"Logged 3 train events of 3 checkpoints to {logdir} at steps {STEPS}" in done.stdout
    run = tb_cnnviz.read_run(logdir)
    assert run.steps("train") == STEPS and run.steps("eval") == []
    assert run.header.class_names == sorted(SHAPE_NAMES)
    np.testing.assert_allclose(run.probes, probes, atol=0.5 / 255 + 1e-6)  # stored 8-bit over their range
    checkpoints = [keras.models.load_model(path / "models" / f"epoch_{epoch:02d}.keras") for epoch in (1, 2, 3)]
    first = filter_rows(checkpoints[0].get_layer("block1_conv1"))
    for step, checkpoint in zip(STEPS, checkpoints):
        event = run.event(step)
        predictions = event.predictions
        np.testing.assert_array_equal(predictions["label"], labels)
        expected = checkpoint.predict(probes, verbose=0)  # the images as the command read them
        np.testing.assert_allclose(predictions["probability"], expected.max(1), atol=1e-4)
        drift = cosine_distance_np(filter_rows(checkpoint.get_layer("block1_conv1")), first)
        np.testing.assert_allclose(event.stats("block1_conv1")["cos_to_first"], drift, atol=stats_tolerance(drift) + 1e-6)
        assert event.top_examples(run.layers[-1]).images.size > 0
    assert np.all(run.event(STEPS[0]).stats("block1_conv1")["cos_to_first"] < 1e-6)
    assert np.all(run.event(STEPS[-1]).stats("block1_conv1")["cos_to_first"].max() > 1e-4)
    steps, figures = run.metrics("train")
    assert steps.tolist() == STEPS and np.isfinite(figures["deletion_auc"][0])  # trust_every=5: the first
    assert np.all(np.isfinite(figures["sanity_rank_corr"]))


@pytest.mark.slow
def test_an_interrupted_replay_of_weights_files_leaves_a_run_that_the_same_command_finishes(trained, replayed,
                                                                                           monkeypatch, capsys):
    """Weights-only checkpoints with --model: the step is the optimizer's, saved in each file.
    Interrupted (Ctrl-C: KeyboardInterrupt) as its second event begins, the replay exits 130 and
    leaves a readable run of its first event; run again, the same command skips that step and
    logs the others, whose drift is measured from the first run's first event."""
    from tb_cnnviz.capture.callback import CNNViz
    from tb_cnnviz.cli.main import EXIT_INTERRUPTED, main

    path, _, _ = trained
    logdir = path / "interrupted"
    arguments = ["replay", path / "weights" / "w_*.weights.h5", "--model", path / "model.keras", "--images",
                 path / "shapes", "--logdir", logdir, "--rescale", "1/255", "--methods", "all"]
    logged, log = [], CNNViz.log

    def interrupted_log(callback, step, mode="train"):
        if logged:
            raise KeyboardInterrupt
        logged.append(step)
        return log(callback, step, mode)

    monkeypatch.setattr(CNNViz, "log", interrupted_log)
    assert main([str(argument) for argument in arguments]) == EXIT_INTERRUPTED
    assert "Interrupted: 1 events written" in capsys.readouterr().out
    monkeypatch.undo()
    assert tb_cnnviz.read_run(logdir).steps("train") == STEPS[:1]
    finished = command(*arguments)
    assert finished.returncode == 0, finished.stderr
    assert f"Skipped 1 checkpoints whose steps {STEPS[:1]}" in finished.stdout
    run, whole = tb_cnnviz.read_run(logdir), tb_cnnviz.read_run(replayed[0])
    assert run.steps("train") == STEPS
    assert run.event(STEPS[0]).methods == list(METHODS)
    for step in STEPS:
        np.testing.assert_allclose(run.event(step).stats("block1_conv1")["cos_to_first"],
                                   whole.event(step).stats("block1_conv1")["cos_to_first"], atol=1e-6)


def uncompiled_checkpoints(path, folder, names) -> str:
    """The trained weights of epochs 1, 2, ... as `names` in `folder`, saved from a model that was
    never compiled (so without an optimizer's state); returns that model's file, beside the folder."""
    import h5py
    from demo.model import vgg_style

    plain = vgg_style(40, classes=len(SHAPE_NAMES))
    folder.mkdir(exist_ok=True)
    plain.save(folder.parent / f"{folder.name}_model.keras")
    for epoch, name in enumerate(names, 1):
        plain.set_weights(keras.models.load_model(path / "models" / f"epoch_{epoch:02d}.keras").get_weights())
        plain.save_weights(folder / name)
        with h5py.File(folder / name) as saved:
            assert "optimizer" not in saved
    return folder.parent / f"{folder.name}_model.keras"


@pytest.mark.slow
def test_checkpoints_are_replayed_in_the_order_of_their_steps(trained, tmp_path):
    """Names that sort otherwise (ModelCheckpoint's "{val_loss}_{epoch}"): the first event, which
    drift is measured from, is the first step's."""
    path, _, _ = trained
    folder = tmp_path / "checkpoints"
    plain = uncompiled_checkpoints(path, folder, ["val0.9_ep1.weights.h5", "val0.4_ep2.weights.h5"])
    done = command("replay", folder / "val0.4_ep2.weights.h5", folder / "val0.9_ep1.weights.h5", "--model",
                   plain, "--images", path / "shapes", "--logdir", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert "at steps [1, 2]" in done.stdout
    run = tb_cnnviz.read_run(tmp_path / "run")
    assert np.all(run.event(1).stats("block1_conv1")["cos_to_first"] < 1e-6)


@pytest.mark.slow
def test_checkpoints_without_an_optimizer_take_their_steps_from_the_epochs_in_their_names(trained):
    path, _, _ = trained
    plain = uncompiled_checkpoints(path, path / "plain", [f"ckpt-{epoch}-loss0.5.weights.h5" for epoch in (1, 2, 3)])
    done = command("replay", path / "plain", "--model", plain, "--images", path / "shapes",
                   "--logdir", path / "plain_run", "--steps-per-epoch", STEPS_PER_EPOCH, "--quiet")
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert tb_cnnviz.read_run(path / "plain_run").steps("train") == STEPS


def test_the_epoch_is_the_number_that_differs_between_the_names():
    assert epochs_in_names(["m_resnet50_03.keras", "m_resnet50_10.keras"]) == [3, 10]
    assert epochs_in_names(["best.weights.h5"]) is None  # not the 5 of .h5
    assert epochs_in_names(["ckpt.weights.h5", "ckpt2.weights.h5"]) is None
    assert epochs_in_names(["weights.02-0.45.keras", "weights.09-0.31.keras"]) == [2, 9]
    assert epochs_in_names(["model.keras"]) is None
    assert epochs_in_names(["epoch_7.keras"]) == [7]


def photograph_folders(path):
    import skimage.data

    for folder, names in PHOTOGRAPHS.items():
        (path / folder).mkdir(parents=True)
        for name, extension in names:
            Image.fromarray(getattr(skimage.data, name)()).save(path / folder / f"{name}.{extension}")
    return path


@pytest.mark.slow
def test_explain_logs_an_eval_event_of_photographs_in_class_folders(tmp_path):
    photos = photograph_folders(tmp_path / "photos")
    keras.utils.set_random_seed(0)
    small_cnn(32, classes=2).save(tmp_path / "small.keras")
    done = command("explain", tmp_path / "small.keras", "--images", photos, "--logdir", tmp_path / "run",
                   "--methods", "all", "--step", 7)
    assert done.returncode == 0, done.stderr
    run = tb_cnnviz.read_run(tmp_path / "run")
    assert run.steps("eval") == [7] and run.steps("train") == []
    assert run.header.class_names == sorted(PHOTOGRAPHS)
    event = run.event(7, "eval")
    assert event.methods == list(METHODS)
    np.testing.assert_array_equal(event.predictions["label"], [0, 0, 0, 1, 1, 1])
    if keras.backend.backend() == "tensorflow":  # Keras' own reader of image folders, as the independent one
        folders = keras.utils.image_dataset_from_directory(photos, image_size=(32, 32), shuffle=False, batch_size=None)
        expected = np.stack([image.numpy() for image, _ in folders])
        quantised = (run.probes.max() - run.probes.min()) / 255 / 2 + 1e-3
        jpeg = np.array([path.endswith((".jpg", ".jpeg")) for path in folders.file_paths])
        errors = np.abs(run.probes - expected).max(axis=(1, 2, 3))
        assert np.all(errors[~jpeg] <= quantised) and np.all(errors[jpeg] <= JPEG_DECODERS + quantised), errors


def test_at_most_max_images_spread_over_the_classes(tmp_path):
    for folder, count in (("a", 5), ("b", 1), ("c", 3)):
        (tmp_path / folder).mkdir()
        for index in range(count):
            Image.fromarray(np.full((4, 6, 3), index * 10 + ord(folder), np.uint8)).save(tmp_path / folder / f"{index}.png")
    found = read_images(str(tmp_path), (4, 6, 3), 5)
    assert found.folder_classes == ["a", "b", "c"] and found.labels.tolist() == [0, 0, 1, 2, 2]
    assert found.pixels[:, 0, 0, 0].tolist() == [ord("a"), 10 + ord("a"), ord("b"), ord("c"), 10 + ord("c")]


@pytest.mark.slow
def test_serve_prints_the_tabs_url_and_serves_the_plugin(replayed):
    logdir, _ = replayed
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tb_cnnviz", "serve", str(logdir.parent), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=checkout_env())
    try:
        line = process.stdout.readline()
        assert f"http://localhost:{port}/#cnnviz" in line, (line, process.stderr.read() if process.poll() else "")
        runs = wait_for(lambda: Api(f"http://127.0.0.1:{port}").runs(), 120, "the plugin to list the run")
        assert runs["run"]["steps"]["train"] == STEPS
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert process.returncode == 130


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing model", "not a model", "missing images", "empty folder", "not an image",
                                  "channels", "folders and classes", "no checkpoint", "weights that do not fit",
                                  "weights without --model", "two outputs", "logdir is a file"])
def test_bad_input_is_told_in_one_line_with_exit_status_2(trained, tmp_path, case):
    path = trained[0]
    shapes_folder, model = path / "shapes", path / "model.keras"
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a picture")
    (tmp_path / "text.keras").write_text("not a model")
    np.save(tmp_path / "grey.npy", np.zeros((2, 40, 40, 1), np.float32))
    keras.utils.set_random_seed(0)
    other = small_cnn(40, classes=4)
    other.save(tmp_path / "other.keras")
    keras.Model(other.inputs, [other.output, other.get_layer("conv4").output]).save(tmp_path / "two.keras")
    (tmp_path / "file").write_text("")
    arguments, said = {
        "missing model": (["explain", tmp_path / "nothing.keras", "--images", shapes_folder], "no such model file"),
        "not a model": (["explain", tmp_path / "text.keras", "--images", shapes_folder], "is not a .keras file"),
        "missing images": (["explain", model, "--images", tmp_path / "nowhere"], "no such file or folder"),
        "empty folder": (["explain", model, "--images", tmp_path / "empty"], "no images"),
        "not an image": (["explain", model, "--images", tmp_path / "broken"], "a.png as an image"),
        "channels": (["explain", model, "--images", tmp_path / "grey.npy"], "the model takes images of 40 x 40 pixels "
                     "and 3 channels"),
        "folders and classes": (["explain", model, "--images", shapes_folder, "--class-names", "a", "b", "c", "d"],
                                "class folders"),
        "no checkpoint": (["replay", tmp_path / "nothing_*.keras", "--images", shapes_folder], "no checkpoint"),
        "weights that do not fit": (["replay", path / "weights", "--model", tmp_path / "other.keras", "--images",
                                     shapes_folder], "layer 'conv1' (Conv2D) has a weight of shape (3, 3, 3, 8), the file (3, 3, 3, 16)"),
        "weights without --model": (["replay", path / "weights", "--images", shapes_folder], "give --model"),
        "two outputs": (["explain", tmp_path / "two.keras", "--images", shapes_folder], "--output"),
        "logdir is a file": (["explain", model, "--images", shapes_folder, "--logdir", tmp_path / "file"],
                             "cannot write to --logdir"),
    }[case]
    done = command(*arguments, *([] if "--logdir" in arguments else ["--logdir", tmp_path / "run"]))
    told = [line for line in done.stderr.splitlines() if line.startswith("tb-cnnviz")]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(told) == 1 and said in told[0] and re.match(r"tb-cnnviz (explain|replay): error: ", told[0]), told
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.slow
def test_the_console_script_is_installed():
    script = shutil.which("tb-cnnviz")
    assert script, "pip install -e . puts tb-cnnviz on the PATH"
    done = subprocess.run([script, "replay", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--steps-per-epoch" in done.stdout


@pytest.mark.slow
@pytest.mark.browser
def test_a_replayed_run_in_the_tab_evolution_trust_and_the_filter_card(replayed, page, tensorboard_server):
    """What the issue asks of a replay in Chromium: the Evolution view's heat map over the three
    checkpoints, the Trust view's charts and the filter card at each step."""
    logdir, _ = replayed
    errors = console_errors(page)
    with tensorboard_server(str(logdir.parent), runs={"run": STEPS}) as server:
        layer = server.runs()["run"]["gradcam_layer"]
        frame = open_tab(page, server, run="run", view="evolution", step=STEPS[-1], evolayer=layer)
        wait_ready(frame, "evolution", STEPS[-1])
        assert_no_tab_fault(frame)
        assert frame.locator("canvas.drift").count() == 1
        assert frame.locator("main .message.empty, main .message.error").count() == 0
        frame = open_tab(page, server, run="run", view="trust", step=STEPS[-1])
        wait_ready(frame, "trust", STEPS[-1])
        assert_no_tab_fault(frame)
        assert frame.locator("figure.chart-card").count() >= 4
        frame = open_tab(page, server, run="run", view="filters", step=STEPS[0], cardlayer=layer, cardchannel=0)
        for step in STEPS:
            if step != STEPS[0]:
                frame.locator("input.step-slider").focus()
                page.keyboard.press("ArrowRight")
            card = frame.locator(f"aside.filter-card[data-ready={json.dumps(f'{layer}:0:{step}')}]")
            card.wait_for(timeout=30000)
            assert_no_tab_fault(frame, "aside.filter-card")
            for part in ("kernel", "examples", "stats"):
                assert card.locator(f"section[data-part={part}] canvas, section[data-part={part}] svg").count() > 0, part
    assert errors == []


def test_16_bit_images_are_scaled_to_8_bits_and_a_side_the_model_fixes_is_kept(tmp_path):
    """As TensorFlow's decoder reads a 16-bit PNG (0-65535 to 0-255); a model of any width but a
    fixed height gets that height and the images' own width."""
    ramp = np.linspace(0, 65535, 6 * 8).reshape(6, 8).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    found = read_images(str(tmp_path), (None, None, 1), 4).pixels
    np.testing.assert_allclose(found[0, ..., 0], ramp / 257, atol=0.5 + 1e-4)
    assert read_images(str(tmp_path), (12, None, 3), 4).pixels.shape == (1, 12, 8, 3)
