"""What a model's output means: the kinds of head tb_cnnviz explains, found from the output's
activation, shape and compiled loss (or named with `head=`), and how each turns the output
into class scores (what Grad-CAM differentiates) and probabilities (what the tab shows).

softmax: (N, K) scores of K >= 2 exclusive classes. binary: one logit or one sigmoid unit,
shown as two classes (class 1's score is the logit, class 0's its negation). multilabel:
(N, K) independent sigmoids. segmentation: (N, H, W, K) scores of K >= 2 classes per pixel.
A softmax or sigmoid inside the head runs as linear while the probe traces, so Grad-CAM sees
the pre-activation score, whose gradients do not vanish.
"""

import dataclasses
import warnings

import keras
import numpy as np
from keras import ops

from tb_cnnviz.anatomy import conv_layers
from tb_cnnviz.storage.metadata import BINARY, HEAD_KINDS, MULTILABEL, SEGMENTATION, SOFTMAX

# The activation each kind switches off while tracing.
_SQUASH = {SOFTMAX: keras.activations.softmax, BINARY: keras.activations.sigmoid, MULTILABEL: keras.activations.sigmoid,
           SEGMENTATION: keras.activations.softmax}
_EXCLUSIVE = (SOFTMAX, SEGMENTATION)  # kinds whose probabilities are a softmax over the classes


def _identity(inputs, *args, **kwargs):
    return inputs


@dataclasses.dataclass(frozen=True, eq=False)
class Head:
    """The output a run explains and how to read it."""

    kind: str
    output: int  # index among the model's outputs (flattened as Keras orders them)
    output_name: str
    classes: int  # classes shown: 2 for a binary head
    shape: tuple  # the output's shape, (None, K) or (None, H, W, K)
    layer: object  # the layer that produces the output
    logits: bool | None  # the (linear-run) output is pre-activation; None: judged by its values

    def linear(self):
        """A context in which the head's own softmax or sigmoid is switched off (or None)."""
        activation = getattr(self.layer, "activation", None)
        if activation is _SQUASH[self.kind]:
            return conv_layers.patched(self.layer, "activation", keras.activations.linear)
        if self.kind in _EXCLUSIVE and isinstance(self.layer, keras.layers.Softmax):
            return conv_layers.patched(self.layer, "call", _identity)
        return None

    def gradcam_layer(self, convs: dict) -> str:
        """The default Grad-CAM layer among `convs` ({path: layer}, model order): the last conv
        layer that is not the head itself (a segmentation net's 1x1 classifier conv)."""
        before = [path for path, layer in convs.items() if layer is not self.layer]
        return (before or list(convs))[-1]

    def select(self, outputs):
        """The explained output of what the model returned."""
        return keras.tree.flatten(outputs)[self.output]

    def scores_and_probabilities(self, outputs, logits: bool):
        """(scores, probabilities) of the explained output, in graph: (N, classes) each, or
        (N, H, W, classes) for a segmentation head."""
        outputs = ops.cast(outputs, "float32")
        if self.kind == BINARY:
            unit = outputs[:, 0]
            if logits:
                return ops.stack([-unit, unit], axis=1), ops.stack([ops.sigmoid(-unit), ops.sigmoid(unit)], axis=1)
            both = ops.stack([1.0 - unit, unit], axis=1)
            return both, both
        if not logits:
            return outputs, outputs
        return outputs, (ops.softmax(outputs, axis=-1) if self.kind in _EXCLUSIVE else ops.sigmoid(outputs))

    def explain(self, scores, probabilities, target, background: int = 0) -> dict:
        """In graph, what one pass says of each probe: `predicted` and `target` classes (a
        target below 0 is the predicted class), `score` (the summed target scores Grad-CAM
        differentiates) and `probabilities` (N, classes).

        A segmentation head's predicted class is the one with the most predicted pixels other
        than `background`; its score is the target's summed over the pixels predicted as it
        (`region`, zero where there are none), and it adds the predicted `masks` (N, H, W),
        each class's `pixel_share` (N, K) and the `target_pixels`. Its `probabilities` are each
        class's mean probability over the pixels predicted as it (0 where none are).
        """
        if self.kind != SEGMENTATION:
            predicted = ops.cast(ops.argmax(probabilities, axis=-1), "int32")
            target = ops.where(target < 0, predicted, target)
            return {"predicted": predicted, "target": target, "probabilities": probabilities,
                    "score": ops.sum(_per_probe(scores, target))}
        classes = probabilities.shape[-1]
        masks = ops.cast(ops.argmax(probabilities, axis=-1), "int32")
        members = ops.one_hot(masks, classes)  # (N, H, W, K)
        counts = ops.sum(members, axis=(1, 2))
        predicted = ops.cast(ops.argmax(ops.where(ops.arange(classes) == background, -1.0, counts), axis=-1), "int32")
        target = ops.where(target < 0, predicted, target)
        region = ops.stop_gradient(ops.cast(ops.equal(masks, target[:, None, None]), "float32"))
        height, width = ops.shape(masks)[1:3]
        pixels = ops.cast(height * width, "float32")
        return {"predicted": predicted, "target": target, "masks": masks, "pixel_share": counts / pixels,
                "target_pixels": ops.sum(region, axis=(1, 2)), "region": region,
                "probabilities": ops.sum(members * probabilities, axis=(1, 2)) / ops.maximum(counts, 1.0),
                "score": ops.sum(_per_probe(scores, target) * region)}

    @staticmethod
    def target_probability(probabilities, target, region=None):
        """In graph, (N,) each probe's target probability: a segmentation head's mean over
        `region` (0 where it is empty)."""
        if region is None:
            return _per_probe(probabilities, target)
        per_pixel = _per_probe(probabilities, target)
        return ops.sum(per_pixel * region, axis=(1, 2)) / ops.maximum(ops.sum(region, axis=(1, 2)), 1.0)

    def judge_logits(self, outputs: np.ndarray) -> bool:
        """Whether outputs of a head whose activation cannot be seen are pre-activation: not
        probabilities (rows summing to 1 for softmax, values in [0, 1] otherwise). Warns if
        they are probabilities, whose gradients vanish on confident predictions."""
        outputs = ops.convert_to_numpy(outputs).astype(np.float64)
        if self.kind in _EXCLUSIVE:
            probabilities = outputs.min() >= 0 and np.allclose(outputs.sum(axis=-1), 1, atol=1e-2)
        else:
            probabilities = outputs.min() >= 0 and outputs.max() <= 1
        if probabilities:
            activation = "softmax" if self.kind in _EXCLUSIVE else "sigmoid"
            warnings.warn(
                f"tb_cnnviz: the model's output ({type(self.layer).__name__}) gives probabilities through a "
                f"{activation} tb_cnnviz cannot switch off, so Grad-CAM uses the post-{activation} score, whose "
                f"gradients vanish on confident predictions. End the model in Dense(activation='{activation}')"
                f"{', a Softmax layer' if self.kind in _EXCLUSIVE else ''} or logits for the pre-{activation} score.",
                stacklevel=4)
        return not probabilities


def _per_probe(values, classes):
    """values[i, ..., classes[i]]: each probe's class of (N, K) or (N, H, W, K) values."""
    index = ops.reshape(classes, (-1,) + (1,) * (len(values.shape) - 1))  # broadcast over the pixels
    return ops.take_along_axis(values, index, axis=-1)[..., 0]


def output_names(model) -> list:
    """Names of the model's outputs, in the order `keras.tree.flatten` gives its results: the
    keys of a model returning a dict (as its compiled losses name them), else the layer names."""
    structure = getattr(model, "_outputs_struct", None)
    if isinstance(structure, dict):
        return sorted(structure)  # flatten's order of a dict
    names = list(getattr(model, "output_names", None) or [])
    return names if len(names) == len(model.outputs) else [f"output_{i}" for i in range(len(model.outputs))]


def _pick_output(model, output) -> int:
    names = output_names(model)
    if output is None:
        if len(names) > 1:
            raise ValueError(f"the model has {len(names)} outputs: pick the one to explain with output=, one of "
                             f"{names} (or its index)")
        return 0
    if isinstance(output, str):
        if output not in names:
            raise ValueError(f"output={output!r} names no output of the model; its outputs are {names}")
        return names.index(output)
    if isinstance(output, (int, np.integer)) and not isinstance(output, bool) and 0 <= output < len(names):
        return int(output)
    raise ValueError(f"output must be an output's name or index, one of {names} or 0..{len(names) - 1}; "
                     f"got {output!r}")


def _loss_name(model, index: int, name: str) -> str:
    """The compiled loss of one output, as a lower-case name ('' if none can be told)."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict):
        loss = loss.get(name)
    elif isinstance(loss, (list, tuple)):
        loss = loss[index] if index < len(loss) else None
    if loss is None:
        return ""
    if isinstance(loss, str):
        return loss.lower()
    fn = getattr(loss, "fn", loss)  # a keras.losses.Loss wraps its function
    return str(getattr(fn, "__name__", type(loss).__name__)).lower()


def _kind_from_loss(loss: str, units: int, rank: int) -> str | None:
    if rank == 4:
        return SEGMENTATION if "categorical" in loss else None
    if "binary" in loss:
        return BINARY if units == 1 else MULTILABEL
    if "categorical" in loss:
        return SOFTMAX
    return None


SUPPORTED = ("class scores (N, K): head='softmax' (exclusive classes), 'binary' (one logit or sigmoid "
             "unit) or 'multilabel' (K sigmoids), and per-pixel class scores (N, H, W, K >= 2): "
             "head='segmentation'")


def find_head(model, head: str | None = None, output=None, guess: bool = False) -> Head:
    """The Head of the output to explain: `head` if given (checked against the output's
    shape), else inferred from the output's activation, its shape and the compiled loss.
    guess: where the kind cannot be told, read K outputs as softmax scores and one as a binary
    logit (for Grad-CAM alone, whose maps are the same either way), instead of raising.

    Raises:
      ValueError: several outputs and no `output=`, an output it cannot explain, or a kind
        it cannot tell (the message asks for head=).
    """
    index = _pick_output(model, output)
    name = output_names(model)[index]
    shape = tuple(model.outputs[index].shape)
    layer = conv_layers.output_layer(model, index)
    described = f"output {name!r} of shape {shape}" if len(model.outputs) > 1 else f"the model output {shape}"
    if len(shape) not in (2, 4) or not shape[-1]:
        raise ValueError(f"tb_cnnviz explains {SUPPORTED}; {described} is not one (regression, detection boxes "
                         f"and sequence outputs are not supported)" + (
                             "; pick another with output=" if len(model.outputs) > 1 else ""))
    units, rank = int(shape[-1]), len(shape)
    activation = getattr(layer, "activation", None)
    if head is None:
        if activation is keras.activations.softmax or isinstance(layer, keras.layers.Softmax):
            head = SEGMENTATION if rank == 4 else SOFTMAX
        elif activation is keras.activations.sigmoid and rank == 2:
            head = BINARY if units == 1 else MULTILABEL
        else:
            head = _kind_from_loss(_loss_name(model, index, name), units, rank)
        if head is None and guess:
            head = SEGMENTATION if rank == 4 else BINARY if units == 1 else SOFTMAX
        if head is None:
            maybe = ("per-pixel class scores (head='segmentation') or another per-pixel output, which tb_cnnviz "
                     "does not explain" if rank == 4
                     else "a logit of two classes (head='binary') or a regression, which tb_cnnviz does not explain"
                     if units == 1 else "softmax logits (head='softmax') or multi-label logits (head='multilabel')")
            raise ValueError(f"{described} may be {maybe}: say which with head=, or compile the model with its "
                             f"loss first")
    if head not in HEAD_KINDS:
        raise ValueError(f"head must be one of {HEAD_KINDS} (or None to infer it), got {head!r}")
    if (head == SEGMENTATION) != (rank == 4):
        need = "per-pixel scores (N, H, W, K)" if head == SEGMENTATION else "scores (N, K)"
        raise ValueError(f"head={head!r} needs {need}; {described} is not" + (
            "; a (N, H, W, K) output is head='segmentation'" if rank == 4 else ""))
    if (head == BINARY) != (units == 1) or (head in _EXCLUSIVE and units < 2):
        need = "one unit" if head == BINARY else "at least 2 classes" if head in _EXCLUSIVE else "several units"
        raise ValueError(f"head={head!r} needs {need}; {described} has {units}")
    squash = _SQUASH[head]
    logits = (True if activation is squash or activation is keras.activations.linear
              or (head in _EXCLUSIVE and isinstance(layer, keras.layers.Softmax))
              else None if activation is None else False)
    return Head(head, index, name, 2 if head == BINARY else units, shape, layer, logits)
