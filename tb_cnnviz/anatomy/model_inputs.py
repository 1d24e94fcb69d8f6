"""Probe samples as the model takes them: an image array, or a dict or list of arrays of which
one is the image input whose maps are shown (`image_input=`). Checked once without the model
(`samples`) and once against its inputs (`for_model`), each error naming the input at fault."""

import dataclasses

import numpy as np

from tb_cnnviz.anatomy import checks

MAX_SAMPLES = 256


@dataclasses.dataclass(frozen=True, eq=False)
class Samples:
    """inputs: the float32 image array, or a dict or list of arrays; image_key: where the image
    array sits in a dict or list (None: inputs is the image array)."""

    inputs: object
    image_key: str | int | None = None

    @property
    def images(self) -> np.ndarray:
        return self.inputs if self.image_key is None else self.inputs[self.image_key]

    def __len__(self):
        """The number of samples (every input has one row per sample)."""
        if self.image_key is None:
            return len(self.inputs)
        return len(next(iter(self.inputs.values())) if isinstance(self.inputs, dict) else self.inputs[0])

    def with_images(self, images):
        """The inputs with the image input replaced (numpy arrays or tensors)."""
        if self.image_key is None:
            return images
        if isinstance(self.inputs, dict):
            return {**self.inputs, self.image_key: images}
        return [images if i == self.image_key else value for i, value in enumerate(self.inputs)]

    def float32_inputs(self):
        """The inputs with the images as float32, as the compiled functions take them."""
        return self.with_images(np.asarray(self.images, np.float32))

    def map(self, function):
        """The inputs with `function` applied to each array."""
        if isinstance(self.inputs, dict):
            return {key: function(value) for key, value in self.inputs.items()}
        if isinstance(self.inputs, list):
            return [function(value) for value in self.inputs]
        return function(self.inputs)


def _named(key) -> str:
    return f"input {key!r}"


def samples(value, image_input=None, name: str = "samples", limit: int = MAX_SAMPLES) -> Samples:
    """Samples of an image array, or of a dict or list of arrays (one row per sample each).
    `image_input` is a dict key, a list index, or the name of a list's input (resolved by
    `for_model`); by default the only 4-D array.

    Raises:
      TypeError, ValueError: not numbers, rows that differ in count, no image input among
        several arrays (or several and no `image_input`), or more than `limit`.
    """
    if not isinstance(value, (dict, list, tuple)):
        if image_input is not None:
            raise ValueError(f"image_input={image_input!r} needs {name} as a dict or list of the model's inputs")
        result = Samples(checks.check_image_batch(value, name))
        count = len(result.inputs)
    else:
        if not value:
            raise ValueError(f"{name} is empty: give the model's inputs")
        keys = list(value) if isinstance(value, dict) else list(range(len(value)))
        arrays = {key: np.asarray(value[key]) for key in keys}
        for key, array in arrays.items():
            if array.dtype == object or not np.issubdtype(array.dtype, np.number) or array.ndim == 0:
                raise TypeError(f"{name} for {_named(key)} must be a numeric array, one row per sample")
        counts = {key: len(array) for key, array in arrays.items()}
        if len(set(counts.values())) != 1:
            raise ValueError(f"{name} must have one row per sample in every input; got {counts}")
        count = counts[keys[0]]
        if image_input is None:
            four_d = [key for key, array in arrays.items() if array.ndim == 4]
            if len(four_d) != 1:
                raise ValueError(f"{name} {'have no' if not four_d else 'have several'} image inputs (N, H, W, C) "
                                 f"among {keys}" + (f": name the one whose maps to show with image_input=, one of "
                                                    f"{four_d}" if four_d else ""))
            image_input = four_d[0]
        elif image_input not in arrays and not (isinstance(value, (list, tuple)) and isinstance(image_input, str)):
            raise ValueError(f"image_input={image_input!r} is not one of the {name}' inputs: {keys}")
        if image_input in arrays:
            arrays[image_input] = checks.check_image_batch(arrays[image_input], f"{name} for {_named(image_input)}")
        result = Samples(arrays if isinstance(value, dict) else list(arrays.values()), image_input)
    if count == 0:
        raise ValueError(f"{name} is empty: give at least one sample")
    if count > limit:
        raise ValueError(f"give between 1 and {limit} {'probe samples' if name == 'samples' else name}, got {count}")
    return result


def for_model(given: Samples, model, name: str = "samples") -> Samples:
    """`given` checked against the model's inputs (`checks.check_model` found an image input
    among them): the same structure, each array shaped as its input takes it.

    Raises:
      ValueError: a structure or shape that does not fit; the message names the input.
    """
    structure = getattr(model, "_inputs_struct", None)
    tensors = model.inputs
    if given.image_key is None:
        if len(tensors) != 1:
            names = sorted(structure) if isinstance(structure, dict) else [t.name for t in tensors]
            raise ValueError(f"the model takes {len(tensors)} inputs {names}: give {name} as a "
                             f"{'dict' if isinstance(structure, dict) else 'list'} of them")
        checks.check_image_shape(given.images, model, name)
        return given
    if isinstance(structure, dict):
        if not isinstance(given.inputs, dict) or set(given.inputs) != set(structure):
            raise ValueError(f"the model takes a dict of inputs {sorted(structure)}; {name} give "
                             f"{sorted(given.inputs) if isinstance(given.inputs, dict) else 'a list'}")
        expected = {key: structure[key] for key in given.inputs}
        image_key = given.image_key
    else:
        if isinstance(given.inputs, dict) or len(given.inputs) != len(tensors):
            raise ValueError(f"the model takes a list of {len(tensors)} inputs {[t.name for t in tensors]}; "
                             f"give {name} as a list in that order")
        expected = dict(enumerate(tensors))
        names = [t.name for t in tensors]
        image_key = given.image_key
        if isinstance(image_key, str):
            if image_key not in names:
                raise ValueError(f"image_input={image_key!r} names no input of the model; its inputs are {names}")
            image_key = names.index(image_key)
    for key, tensor in expected.items():
        want, got = tuple(tensor.shape[1:]), np.shape(given.inputs[key])[1:]
        if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
            raise ValueError(f"{name} for {_named(key)} have shape {got} per sample but the model's input expects "
                             f"{tuple('any' if w is None else w for w in want)}")
    inputs = given.inputs
    if image_key != given.image_key:  # an input name resolved to its place in the list
        inputs = list(inputs)
        inputs[image_key] = checks.check_image_batch(inputs[image_key], f"{name} for {_named(image_key)}")
    return Samples(inputs, image_key)
