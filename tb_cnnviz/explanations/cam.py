"""Class activation maps: one template computation (`ClassExplainer`), methods differing only in
their channel weights (`CAMMethod`), as in pytorch-grad-cam's base_cam.py.

map = relu(sum_k w_k * A_k), where A (N, h, w, K) are the target layer's activations and the
weights w (N, K) come from the gradients of the class score with respect to A. Maps are
computed and stored at the layer's resolution.
"""

import contextlib
import weakref

import numpy as np
from keras import ops

from tb_cnnviz import backend
from tb_cnnviz.anatomy import conv_layers
from tb_cnnviz.anatomy.heads import Head


class CAMMethod:
    """A class activation map method: `weights` of the channels, from activations and gradients
    (N, h, w, K) each; calling it gives the non-negative, unnormalised maps (N, h, w)."""

    name: str

    def weights(self, activations, gradients):
        raise NotImplementedError

    def __call__(self, activations, gradients):
        return ops.relu(ops.einsum("nhwk,nk->nhw", activations, self.weights(activations, gradients)))


class GradCAM(CAMMethod):
    """Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017): each channel weighted by its gradient averaged over
    the map, the share of the class score that flows through it."""

    name = "gradcam"

    def weights(self, activations, gradients):
        return ops.mean(gradients, axis=(1, 2))


class GradCAMPP(CAMMethod):
    """Grad-CAM++ (Chattopadhyay et al., "Grad-CAM++: Generalized Gradient-Based Visual
    Explanations for Deep Convolutional Networks", WACV 2018): a weighted average of the positive
    gradients, so that several instances of a class each count. With the paper's exponential
    score, the weights need only first, second and third powers of the gradients."""

    name = "gradcam_pp"

    def weights(self, activations, gradients):
        squared = ops.square(gradients)
        cubed = squared * gradients
        activation_sums = ops.sum(activations, axis=(1, 2), keepdims=True)
        alpha = squared / (2.0 * squared + activation_sums * cubed + 1e-6)
        alpha = ops.where(gradients != 0.0, alpha, 0.0)
        return ops.sum(ops.relu(gradients) * alpha, axis=(1, 2))


METHODS = {method.name: method for method in (GradCAM(), GradCAMPP())}


class ClassExplainer:
    """One forward pass of a model that explains its `head`: the classes of each probe (`slots`
    of them: the target, the true class, then the most probable, each once) and every method's
    map of each, from the gradients of each class's score with respect to `layer`'s output.

    `watched` {path: layer} are recorded too (`layer` among them). Call it in graph (inside a
    compiled function); `judge_logits` first, outside it, when the head's activation is unknown.
    """

    def __init__(self, model, head: Head, layer: str, watched: dict, slots: int = 1, background_class: int = 0):
        self._model = weakref.ref(model)  # weak: gradcam()'s cache of explainers must not keep models alive
        self.head, self.layer, self.slots = head, layer, slots
        self.watched, self.background_class = watched, background_class
        self.logits = head.logits  # None until judged from the first outputs (Head.judge_logits)

    @property
    def model(self):
        return self._model()

    def judge_logits(self, inputs) -> None:
        """Settles whether a head with no activation of its own outputs logits, from its outputs."""
        if self.logits is None:
            self.logits = self.head.judge_logits(self.head.select(self.model(inputs, training=False)))

    def forward(self, inputs) -> tuple:
        """(class scores, probabilities) of the explained output; call it inside `linear()`."""
        return self.head.scores_and_probabilities(self.head.select(self.model(inputs, training=False)), self.logits)

    def linear(self):
        """A context in which the head's softmax or sigmoid is off, so scores are pre-activation."""
        return self.head.linear() or contextlib.nullcontext()

    def __call__(self, inputs, target, true) -> tuple:
        """(out, recorded): out holds the head's `explain` fields (predicted, target, probabilities,
        a segmentation head's masks, pixel_share, target_pixels and region), `classes` (N, slots)
        and each method's maps (N, slots, h, w); recorded {path: output} of the watched layers."""
        def forward(watch):  # run once per backend pass (JAX runs it twice): each run records its own
            recorded = {}
            with conv_layers.recording(self.watched, recorded, {self.layer: watch}):
                scores, probabilities = self.forward(inputs)
            out = self.head.explain(scores, probabilities, target, self.background_class)
            out["classes"] = self._classes(out, true)
            slot_scores = [out.pop("score")] + [  # slot 0 is the target
                self.head.explain(scores, probabilities, out["classes"][:, slot], self.background_class)["score"]
                for slot in range(1, self.slots)]
            missing = set(self.watched) - set(recorded)
            if missing:
                raise ValueError(f"layers {sorted(missing)} are not used by the model's forward pass")
            return (out, recorded), slot_scores

        try:
            with self.linear():
                (out, recorded), gradients = backend.current().layer_gradients(forward)
        except backend.NotDifferentiable as error:
            raise backend.cannot_differentiate(
                error, f"the class scores with respect to the output of layer {self.layer!r}") from error
        activations = ops.cast(recorded[self.layer], "float32")
        for name, method in METHODS.items():
            out[name] = ops.stack([method(activations, ops.cast(g, "float32")) for g in gradients], axis=1)
        return out, recorded

    def _classes(self, out, true):
        """(N, slots) classes to explain per probe: the target, the true class (-1: none), then
        the others from the most probable (a segmentation head's: the most predicted pixels),
        each once."""
        ranked = out["probabilities"] if "pixel_share" not in out else out["pixel_share"]
        order = backend.current().top_k(ranked, min(ranked.shape[1], self.slots))[1]  # ties: lower first
        target = out["target"]
        candidates = ops.concatenate([target[:, None], ops.where(true < 0, target, true)[:, None],
                                      ops.cast(order, target.dtype)], axis=1)
        count = candidates.shape[1]
        same = ops.equal(candidates[:, :, None], candidates[:, None, :])
        before = np.triu(np.ones((count, count), bool), k=1)  # i < j
        repeated = ops.any(ops.logical_and(same, before[None]), axis=1)  # equals an earlier candidate
        first = ops.argsort(ops.where(repeated, count, 0) + ops.arange(count)[None], axis=1)  # keys unique
        return ops.take_along_axis(candidates, first[:, :self.slots], axis=1)


def upsample(maps, size):
    """(N, h, w) maps -> (N, H, W) at `size`, bilinear (what `storage.maps.upsample` does in NumPy)."""
    return backend.current().resize(maps[..., None], size, "bilinear")[..., 0]
