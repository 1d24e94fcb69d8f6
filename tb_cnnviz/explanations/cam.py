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
from tb_cnnviz.storage.maps import CLASS_MAP_METHODS


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


class HiResCAM(CAMMethod):
    """HiResCAM (Draelos and Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations
    of convolutional neural networks", 2020): the gradients multiply the activations pixel by
    pixel before the sum over channels, instead of being averaged first; for a head that pools
    and then applies a dense layer, the map is exactly each pixel's share of the score."""

    name = "hirescam"

    def __call__(self, activations, gradients):
        return ops.relu(ops.sum(gradients * activations, axis=-1))


class XGradCAM(CAMMethod):
    """XGrad-CAM (Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and
    Explanation of CNNs", BMVC 2020): each channel weighted by its gradient averaged with the
    channel's own activations as weights, which makes the map satisfy the paper's sensitivity
    and conservation axioms."""

    name = "xgradcam"

    def weights(self, activations, gradients):
        return ops.sum(gradients * activations, axis=(1, 2)) / (ops.sum(activations, axis=(1, 2)) + 1e-7)


class LayerCAM(CAMMethod):
    """LayerCAM (Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for
    Localization", IEEE TIP 2021): each pixel's activations weighted by their positive
    gradients there, so that shallow layers, whose averaged gradients cancel, still give
    fine-grained maps."""

    name = "layercam"

    def __call__(self, activations, gradients):
        return ops.relu(ops.sum(ops.relu(gradients) * activations, axis=-1))


class EigenCAM(CAMMethod):
    """Eigen-CAM (Muhammad and Yeasin, "Eigen-CAM: Class Activation Map using Principal
    Components", IJCNN 2020): the activations (pixels x channels, each channel's mean
    subtracted) projected on their first principal direction. It uses no gradients, so it is
    the same map for every class; the sign is the one whose projection correlates positively
    with the channels' mean activation."""

    name = "eigencam"

    def __call__(self, activations, gradients):
        n, height, width, channels = activations.shape
        flat = ops.reshape(activations, (n, height * width, channels))
        centred = flat - ops.mean(flat, axis=1, keepdims=True)
        first = ops.svd(centred, full_matrices=False)[2][:, 0, :]  # (N, K): the first right singular vector
        projection = ops.einsum("npk,nk->np", centred, first)
        mean_map = ops.mean(flat, axis=2)
        agreement = ops.sum((projection - ops.mean(projection, axis=1, keepdims=True))
                            * (mean_map - ops.mean(mean_map, axis=1, keepdims=True)), axis=1)
        sign = ops.where(agreement < 0, -1.0, 1.0)
        return ops.relu(ops.reshape(projection * sign[:, None], (n, height, width)))


CAM_METHODS = {method.name: method for method in (GradCAM(), GradCAMPP(), HiResCAM(), XGradCAM(), LayerCAM(),
                                                  EigenCAM())}
EVENT_METHODS = CLASS_MAP_METHODS  # what every event stores, of each class it explains


class ClassExplainer:
    """One forward pass of a model that explains its `head`: the classes of each probe (`slots`
    of them: the target, the true class, then the most probable, each once) and the `methods`'
    maps of each, from the gradients of each class's score with respect to `layer`'s output; the
    `target_methods`' maps of the target class only.

    `watched` {path: layer} are recorded too (`layer` among them). Call it in graph (inside a
    compiled function); `judge_logits` first, outside it, when the head's activation is unknown.
    """

    def __init__(self, model, head: Head, layer: str, watched: dict, slots: int = 1, background_class: int = 0,
                 methods: tuple = EVENT_METHODS, target_methods: tuple = ()):
        self._model = weakref.ref(model)  # weak: gradcam()'s cache of explainers must not keep models alive
        self.head, self.layer, self.slots, self.methods = head, layer, slots, methods
        self.target_methods = target_methods
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
        a segmentation head's masks, pixel_share, target_pixels and region), `classes` (N, slots),
        each method's maps (N, slots, h, w) and `method_maps` {target method: (N, h, w)};
        recorded {path: output} of the watched layers."""
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
        gradients = [ops.cast(g, "float32") for g in gradients]
        for name in self.methods:
            out[name] = ops.stack([CAM_METHODS[name](activations, g) for g in gradients], axis=1)
        out["method_maps"] = {name: CAM_METHODS[name](activations, gradients[0]) for name in self.target_methods}
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
