"""What the command line's verbs do, free of argument parsing: `explain` (an eval event of a
saved model), `replay` (a train event per checkpoint, as if the callback had been in fit) and
`serve` (TensorBoard on a logdir). Each says what it did on `say` (print, or nothing when quiet)."""

import contextlib
import os
import re
import sys
import threading

import numpy as np

from tb_cnnviz.anatomy import heads
from tb_cnnviz.capture.callback import CNNViz
from tb_cnnviz.cli import images as image_files
from tb_cnnviz.cli import models
from tb_cnnviz.cli.errors import CommandError
from tb_cnnviz.explanations.progress import progress_bars
from tb_cnnviz.reading.reader import read_run

TAB = "#cnnviz"  # the fragment of TensorBoard's URL that opens the tab


def explain(model_path, images_path, logdir, *, step=None, max_images=32, rescale=None, class_names=None,
            say=print, **options) -> int:
    """Logs one eval event of the model at `model_path` on the images at `images_path`; returns
    its step (`step`, else the saved optimizer's step count, else 0). `options` go to CNNViz."""
    model = models.load_model(model_path)
    probes = _probes(images_path, model, max_images, rescale)
    labels, names = class_labels(probes, model, class_names, options)
    step = models.model_step(model) if step is None else step
    callback = _callback(logdir, probes, labels, names, model, options)
    try:
        _log(callback, step, "eval", logdir)
    finally:
        callback.close()
    say(f"Logged the eval event of {model_path} at step {step} ({len(probes.pixels)} images"
        f"{', classes ' + ', '.join(names) if names else ''}) to {logdir}. See it with: tb-cnnviz serve {logdir}")
    return step


def replay(checkpoints, images_path, logdir, *, model_path=None, steps_per_epoch=None, max_images=32,
           rescale=None, class_names=None, say=print, verbose="auto", **options) -> list:
    """Logs a train event per checkpoint, at its step, in the order of the steps (drift is measured
    from the first); returns the steps logged. Steps the logdir holds already are skipped (a
    replay interrupted or extended goes on where it stopped).
    verbose: a progress bar over the checkpoints, as `progress.progress_bars` takes it."""
    files = models.checkpoint_files(checkpoints)
    architecture = model_path or next((name for name in files if name.endswith(".keras")), None)
    if architecture is None:
        raise CommandError("the checkpoints are weights only (.weights.h5): give --model, the saved model "
                           "(.keras) whose architecture they fit")
    model = models.load_model(architecture)
    probes = _probes(images_path, model, max_images, rescale)
    labels, names = class_labels(probes, model, class_names, options)
    steps = models.checkpoint_steps(model, files, architecture, steps_per_epoch)
    held, done, skipped = logged_steps(logdir, "train"), [], []
    bars = progress_bars(verbose, "checkpoint")
    callback, bar = None, bars(len(files)) if bars else None
    try:
        for count, (step, path) in enumerate(sorted(zip(steps, files), key=lambda pair: pair[0]), 1):
            if step in held or step in done:
                skipped.append(step)
            else:
                models.load_checkpoint(model, path, architecture)
                callback = callback or _callback(logdir, probes, labels, names, model, options)
                _log(callback, step, "train", logdir)
                done.append(step)
            if bar:
                bar.update(count)
    except KeyboardInterrupt:
        say(f"{chr(10) if bar else ''}Interrupted: {len(done)} events written to {logdir} (steps {done}); the same "
            f"command goes on from there.")
        raise
    finally:
        if callback is not None:
            callback.close()
    if skipped:
        say(f"Skipped {len(skipped)} checkpoints whose steps {skipped} {logdir} holds already.")
    say(f"Logged {len(done)} train events of {len(files)} checkpoints to {logdir}"
        + (f" at steps {done}" if done else "") + f". See them with: tb-cnnviz serve {logdir}")
    return done


def serve(logdir, *, port=6006, host="localhost", say=print, stop=None):
    """Runs TensorBoard on `logdir` until interrupted (or `stop`, a threading.Event, is set),
    after printing the URL of the tab."""
    if not os.path.isdir(logdir):
        raise CommandError(f"no such logdir: {logdir}")
    from tensorboard import program  # here: TensorBoard's server is only needed to serve

    board = program.TensorBoard()
    try:
        board.configure(logdir=logdir, port=port, host=host)
        url = board.launch()
    except program.TensorBoardServerException as error:
        raise CommandError(f"TensorBoard cannot listen on {host}:{port}: {error.msg}; give another --port") from None
    except OSError as error:
        raise CommandError(f"TensorBoard cannot listen on {host}:{port}: {error}; give another --host") from None
    say(f"TensorBoard serves {logdir}; the cnnviz tab: {url}{TAB}  (Ctrl-C stops it)")
    sys.stdout.flush()
    (stop or threading.Event()).wait()


def class_labels(probes, model, class_names, options):
    """(labels, class names) of the probes: from their class folders (labels in the model's
    classes by name where `class_names` are given), else none and `class_names`. `options`:
    CNNViz's, whose head= and output= say what the model's output is."""
    try:
        head = heads.find_head(model, options.get("head"), options.get("output"), guess=True)
    except ValueError as error:
        raise CommandError(_in_options(error)) from None
    folders = probes.folder_classes
    if folders is None or head.kind == heads.SEGMENTATION:
        return None, class_names
    if class_names is None:
        if len(folders) != head.classes:
            raise CommandError(f"--images has {len(folders)} class folders {folders} and the model has {head.classes} "
                               f"classes: give --class-names, the model's {head.classes} class names, so that each "
                               f"folder's name finds its class")
        class_names, indices = folders, probes.labels
    else:
        unknown = sorted(set(folders) - set(class_names))
        if unknown:
            raise CommandError(f"class folders {unknown} are not among --class-names {class_names}: name the folders "
                               f"after the model's classes")
        indices = np.array([class_names.index(folders[label]) for label in probes.labels], np.int64)
    if head.kind == heads.MULTILABEL:
        return np.eye(head.classes, dtype=np.int64)[indices], class_names
    return indices, class_names


def logged_steps(logdir: str, mode: str) -> set:
    """The steps of the run's `mode` events in `logdir` (none for a new logdir)."""
    try:
        return set(read_run(logdir).steps(mode))
    except (FileNotFoundError, ValueError):
        return set()


def _probes(images_path, model, max_images, rescale):
    probes = image_files.read_images(images_path, models.image_shape(model), max_images)
    if rescale is not None:
        probes.pixels *= np.float32(rescale)
    return probes


def _callback(logdir, probes, labels, names, model, options):
    try:
        with _writing(logdir):
            return CNNViz(logdir, probes.pixels, labels, class_names=names, model=model, strict=True, **options)
    except (ValueError, TypeError) as error:
        raise CommandError(_in_options(error)) from None


def _in_options(error) -> str:
    """CNNViz's message with its head= and output= said as the command's --head and --output."""
    return re.sub(r"\b(head|output)=('?)([\w-]*)\2", lambda found: " ".join(filter(None, (
        f"--{found[1]}", found[3]))), str(error))


@contextlib.contextmanager
def _writing(logdir):
    """An OSError of writing the logdir (a file in its place, no permission) told as bad input."""
    try:
        yield
    except OSError as error:
        raise CommandError(f"cannot write to --logdir {logdir}: {error}") from None


def _log(callback, step, mode, logdir):
    with _writing(logdir):
        callback.log(step, mode)
