"""The PyTorch backend: functions run eagerly under `torch.no_grad`, so forward-only passes build
no autograd graph; a layer's gradients record one from that layer's output on, and only to it
(`torch.autograd.grad`, no gradients of the weights); `backend.resizing` for TensorFlow's resize.
Multi-process training (torch.distributed): the process of rank 0 writes."""

import re

import torch
from keras import ops, tree

from tb_cnnviz.backend import resizing
from tb_cnnviz.backend.base import UNCONNECTED, Backend, NotDifferentiable, differentiating


def _detached(structure):
    return tree.map_structure(lambda value: value.detach() if isinstance(value, torch.Tensor) else value, structure)


def _as_tensor(value):
    return ops.convert_to_tensor(value) if hasattr(value, "__array__") and not isinstance(value, torch.Tensor) else value


class _NoGrad:
    """`function` run under torch.no_grad, its array arguments as tensors (what it gets on the
    other backends); eager PyTorch needs no tracing."""

    def __init__(self, function):
        self._function = function

    def __call__(self, *args):
        with torch.no_grad():
            return self._function(*tree.map_structure(_as_tensor, args))


# what PyTorch says of a value that leaves the graph (`.numpy()`) or changes it in place
_AUTOGRAD_SAYS = re.compile(r"requires grad|in-place operation")


def _gradient(score, tensor):
    if not score.requires_grad:  # nothing differentiable between: e.g. a value taken into NumPy
        raise NotDifferentiable(UNCONNECTED)
    with differentiating(RuntimeError):  # e.g. "the derivative for ... is not implemented"
        found = torch.autograd.grad(score, tensor, retain_graph=True, allow_unused=True)[0]
    if found is None:
        raise NotDifferentiable(UNCONNECTED)
    return found


class TorchBackend(Backend):
    name = "torch"
    pass_pixels = 2**19

    def compile(self, function, model):
        return _NoGrad(function)

    def layer_gradients(self, forward):
        watched = []

        def watch(tensor):
            torch.set_grad_enabled(True)  # from here on: what comes before needs no graph
            tensor = tensor.detach().requires_grad_(True)
            watched.append(tensor)
            return tensor

        grad_was_enabled = torch.is_grad_enabled()
        try:
            try:
                outputs, scores = forward(watch)
            except RuntimeError as error:  # autograd's, once a graph is recorded from the watched layer on
                if watched and _AUTOGRAD_SAYS.search(str(error)):
                    raise NotDifferentiable.because(error) from error
                raise
            if not watched:
                raise ValueError("the watched layer is not used by the model's forward pass")
            gradients = [_gradient(score, watched[0]) for score in scores]
        finally:
            torch.set_grad_enabled(grad_was_enabled)
        return _detached(outputs), gradients

    def input_gradient(self, function, x):
        with torch.enable_grad():
            x = ops.convert_to_tensor(x).detach().requires_grad_(True)
            value = function(x)
            gradient = _gradient(value, x)
        return value.detach(), gradient

    def top_k(self, values, k):
        found, indices = torch.sort(ops.convert_to_tensor(values), dim=-1, descending=True, stable=True)
        return found[..., :k], indices[..., :k]

    def resize(self, images, size, method):
        return resizing.resize(images, size, method)

    def is_chief(self, model):
        distributed = torch.distributed
        return not (distributed.is_available() and distributed.is_initialized()) or distributed.get_rank() == 0
