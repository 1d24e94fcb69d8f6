"""The TensorFlow backend: tf.function (which reads variables when it runs), GradientTape,
tf.image and tf.distribute."""

import tensorflow as tf

from tb_cnnviz.backend.base import UNCONNECTED, Backend, NotDifferentiable, differentiating


def _signature(value):
    """What a compiled function is traced for: an array's shape and dtype, a Python value itself."""
    if isinstance(value, (tf.Tensor, tf.Variable)) or hasattr(value, "__array__"):
        return tuple(value.shape), str(value.dtype)
    return value


class _Compiled:
    """A tf.function traced for each input signature's exact shapes (code may read static
    shapes), whose concrete function is called directly, skipping tf.function's dispatch."""

    def __init__(self, function):
        self._function = tf.function(function)
        self._concrete = {}

    def __call__(self, *args):
        key = repr(tf.nest.map_structure(_signature, args))
        if key not in self._concrete:
            try:
                self._concrete[key] = self._function.get_concrete_function(*args)
            except Exception as error:  # AutoGraph restates it, a StagingError for a ValueError's subclass
                if hasattr(error, "ag_error_metadata") and isinstance(error.__context__, NotDifferentiable):
                    raise error.__context__  # with its cause, the framework's error
                raise
        return self._concrete[key](*tf.nest.map_structure(_as_tensor, args))


def _as_tensor(value):
    return tf.convert_to_tensor(value) if hasattr(value, "__array__") and not isinstance(value, tf.Tensor) else value


def _gradient(tape, value, tensor):
    with differentiating(LookupError):  # "No gradient defined for operation ..."
        found = tape.gradient(value, tensor)
    if found is None:  # no differentiable path (tf.numpy_function, a cast to integers, ...)
        raise NotDifferentiable(UNCONNECTED)
    return found


class TensorFlowBackend(Backend):
    name = "tensorflow"

    def compile(self, function, model):
        return _Compiled(function)

    def layer_gradients(self, forward):
        watched = []
        with tf.GradientTape(persistent=True) as tape:
            def watch(tensor):
                tape.watch(tensor)  # a layer after frozen ones is no function of a watched variable
                watched.append(tensor)
                return tensor

            outputs, scores = forward(watch)
        gradients = [_gradient(tape, score, watched[0]) for score in scores]
        del tape
        return outputs, gradients

    def input_gradient(self, function, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = function(x)
        return value, _gradient(tape, value, x)

    def resize(self, images, size, method):
        return tf.image.resize(images, size, method=method)

    def is_chief(self, model):
        strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
        resolver = getattr(strategy, "cluster_resolver", None)
        cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
        if not cluster or resolver.task_type == "chief":
            return True
        return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster
