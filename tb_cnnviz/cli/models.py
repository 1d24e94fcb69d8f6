"""Saved models and checkpoints for the command line: loading them with errors that name the file
and what to do, each checkpoint's training step, and the checkpoints a replay's arguments name."""

import glob
import os
import re
import warnings
import zipfile

import keras

from tb_cnnviz.cli.errors import CommandError

MODEL_FILES = (".keras", ".h5", ".hdf5")
CHECKPOINT_FILES = (".keras", ".weights.h5")


def natural_key(name: str) -> list:
    """Sorts names with numbers in them by the numbers' values: epoch 10 after epoch 9."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def load_model(path: str) -> keras.Model:
    """The model saved at `path` (`.keras`; `.h5` where Keras loads it), with its optimizer."""
    if not os.path.isfile(path):
        raise CommandError(f"no such model file: {path}")
    if not path.endswith(MODEL_FILES):
        raise CommandError(f"{path} is not a saved model: give a .keras file (model.save), or an .h5 one")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise CommandError(f"{path} is not a .keras file (the zip archive model.save writes): was it cut short, "
                           f"or renamed from another format?")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(optimizer|compile).*")
            return keras.models.load_model(path)
    except Exception as error:  # noqa: BLE001 - any failure to load is the file's: say which
        raise CommandError(f"cannot load {path} as a Keras model: {_one_line(error)}") from None


def image_shape(model) -> tuple:
    """(H, W, C) of the model's one image input (None for a side it takes at any size)."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise CommandError("the model has no inputs Keras can read (a subclassed model?): save a functional or "
                           "Sequential model, or use tb_cnnviz.CNNViz from Python")
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        shapes = [tuple(tensor.shape[1:]) for tensor in inputs]
        raise CommandError(f"the command explains models with one image input (H, W, C); this one takes {shapes}: "
                           f"use tb_cnnviz.CNNViz from Python, which takes several inputs")
    return tuple(inputs[0].shape[1:])


def checkpoint_files(arguments: list) -> list:
    """The checkpoint files that `arguments` name (files, folders of them, glob patterns), in
    natural order of their names (epoch 10 after epoch 9)."""
    found = []
    for argument in arguments:
        if os.path.isdir(argument):
            matches = [os.path.join(argument, name) for name in os.listdir(argument)]
        elif os.path.exists(argument):
            matches = [argument]
        else:
            matches = glob.glob(argument)
        matches = [name for name in matches if name.endswith(CHECKPOINT_FILES) and os.path.isfile(name)]
        if not matches:
            raise CommandError(f"no checkpoint ({' or '.join(CHECKPOINT_FILES)} file) matches {argument}")
        found += [name for name in matches if name not in found]
    return sorted(found, key=lambda name: natural_key(os.path.basename(name)))


def epochs_in_names(names: list) -> list | None:
    """Each file's epoch, as ModelCheckpoint's `{epoch}` writes it: the first whole number in the
    names that differs between them (the only file's first one); None if the names have none."""
    stems = [re.sub(r"(\.weights\.h5|\.keras|\.h5)$", "", os.path.basename(name)) for name in names]
    numbers = [re.findall(r"(?<!\d)(?<!\d\.)\d+(?!\d|\.\d)", stem) for stem in stems]
    places = min(len(found) for found in numbers)
    if places == 0:
        return None
    for place in range(places):
        column = [int(found[place]) for found in numbers]
        if len(names) == 1 or len(set(column)) == len(column):
            return column
    return None


def checkpoint_steps(model, files: list, architecture: str, steps_per_epoch: int | None) -> list:
    """Each checkpoint's step (loading each into `model`, which checks that it fits): its saved
    optimizer's step count; else the epoch in the names (`epochs_in_names`) times
    `steps_per_epoch` (1 if not given); else its place in `files`, from 1."""
    epochs = epochs_in_names(files)
    steps = []
    for position, path in enumerate(files):
        saved = load_checkpoint(model, path, architecture)
        steps.append(saved or (epochs[position] * (steps_per_epoch or 1) if epochs else position + 1))
    return steps


def load_checkpoint(model, path: str, architecture: str) -> int | None:
    """Loads the weights of checkpoint `path` into `model`; returns the saved optimizer's step
    count where the file has one (else None).

    Raises:
      CommandError: the file cannot be read, or its weights do not fit the model (the first
        layer that differs, as Keras found it).
    """
    optimizer = getattr(model, "optimizer", None)
    counts_steps = optimizer is not None and optimizer.built
    if counts_steps:
        optimizer.iterations.assign(0)
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            model.load_weights(path)
    except Exception as error:  # noqa: BLE001 - the file's fault: say which and how
        raise CommandError(f"the weights in {path} do not fit the model of {architecture}: "
                           f"{_layer_that_differs(error)}") from None
    # Keras warns, and loads the rest, where part of the model finds nothing in the file; the
    # optimizer's state alone may differ (another optimizer, or none saved).
    skipped = [str(found.message) for found in warned
               if "Skipping" in str(found.message) and "optimizer" not in str(found.message)]
    if skipped:
        raise CommandError(f"the weights in {path} do not fit the model of {architecture}: {_one_line(skipped[0])}")
    return model_step(model) or None


def _layer_that_differs(error) -> str:
    """Keras' error of load_weights as one line: the first layer it could not load, and why."""
    text = str(error)
    layer = re.search(r"object <(\w+) name=([^,>]+)", text)
    # value.shape is a tuple, or on PyTorch torch.Size([...])
    shapes = re.search(r"variable\.shape=\(([\d, ]*)\).*?value\.shape=(?:torch\.Size\(\[|\()([\d, ]*)", text, re.S)
    counts = re.search(r"expected (\d+) variables, but received (\d+)", text)
    if layer and shapes:
        model_shape, file_shape = (tuple(int(side) for side in found.split(",") if side.strip()) for found in shapes.groups())
        return (f"layer {layer.group(2)!r} ({layer.group(1)}) has a weight of shape {model_shape}, the file "
                f"{file_shape}; give --model the architecture the checkpoints were saved from")
    if layer and counts:
        return (f"layer {layer.group(2)!r} ({layer.group(1)}) has {counts.group(1)} weights, the file "
                f"{counts.group(2)}; give --model the architecture the checkpoints were saved from")
    return _one_line(error)


def _one_line(error) -> str:
    """The error's message up to its first full stop after the first line, on one line."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__
    return text[:text.find(". ", 40) + 1 or 400][:400]


def model_step(model) -> int:
    """The optimizer's step count of a loaded model (0 without an optimizer)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.built:
        return 0
    return int(keras.ops.convert_to_numpy(optimizer.iterations))
