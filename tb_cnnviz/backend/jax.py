"""The JAX backend: `jax.jit` with the model's variables passed in at every call (a
`keras.StatelessScope` maps them inside, as Keras' own `stateless_call` does: a traced function
that closed over them would keep the weights of its first call), `jax.vjp` for gradients, and
`backend.resizing` for TensorFlow's resize."""

import jax
import jax.numpy as jnp
import keras

from tb_cnnviz.backend import resizing
from tb_cnnviz.backend.base import Backend, differentiating


def _is_array(value) -> bool:
    return isinstance(value, jax.Array) or hasattr(value, "__array__")


class _Compiled:
    """`function` under jax.jit: array leaves of the arguments are traced, every other leaf (an
    int, a string, None) is static, as tf.function takes Python values."""

    def __init__(self, function, model):
        self._function = function
        self._variables = list(model.variables)
        self._jitted = {}  # (tree, which leaves are arrays, the static leaves) -> jitted function

    def __call__(self, *args):
        leaves, tree = jax.tree_util.tree_flatten(args)
        traced = tuple(_is_array(leaf) for leaf in leaves)
        static = tuple(leaf for leaf, is_traced in zip(leaves, traced) if not is_traced)
        key = (tree, traced, static)
        if key not in self._jitted:
            self._jitted[key] = jax.jit(self._traced(tree, traced, static))
        values = [variable.value for variable in self._variables]
        return self._jitted[key](values, [leaf for leaf, is_traced in zip(leaves, traced) if is_traced])

    def _traced(self, tree, traced, static):
        def run(values, arrays):
            arrays, constants = iter(arrays), iter(static)
            leaves = [next(arrays) if is_traced else next(constants) for is_traced in traced]
            with keras.StatelessScope(state_mapping=list(zip(self._variables, values))):
                return self._function(*jax.tree_util.tree_unflatten(tree, leaves))

        return run


class JaxBackend(Backend):
    name = "jax"
    pass_pixels = 2**19

    def compile(self, function, model):
        return _Compiled(function, model)

    def layer_gradients(self, forward):
        shapes = []

        def shape_of(tensor):
            shapes.append(jax.ShapeDtypeStruct(tensor.shape, tensor.dtype))
            return tensor

        jax.eval_shape(lambda: forward(shape_of)[1])  # the watched tensor's shape, traced abstractly
        if not shapes:
            raise ValueError("the watched layer is not used by the model's forward pass")

        def scores_of(offset):  # the layer's output plus a zero offset: d/d offset = d/d output
            outputs, scores = forward(lambda tensor: tensor + offset)
            return scores, outputs

        offset = jnp.zeros(shapes[0].shape, shapes[0].dtype)
        with differentiating():  # traced, the forward pass already passed eval_shape: an error here is the gradient's
            scores, pullback, outputs = jax.vjp(scores_of, offset, has_aux=True)
            gradients = []
            for index in range(len(scores)):
                cotangent = [jnp.ones_like(score) if i == index else jnp.zeros_like(score) for i, score in enumerate(scores)]
                gradients.append(pullback(cotangent)[0])
        return outputs, gradients

    def input_gradient(self, function, x):
        x = jnp.asarray(x)
        jax.eval_shape(function, x)  # errors of the function itself, as they are
        with differentiating():
            return jax.value_and_grad(function)(x)

    def resize(self, images, size, method):
        return resizing.resize(images, size, method)

    def is_chief(self, model):
        return jax.process_index() == 0

