"""tb-cnnviz: see inside convolutional networks while they train, in TensorBoard.

The package follows the data: `capture` (the Keras callback) computes events with `anatomy`
(what a model is made of), `explanations` (the methods and their trust figures) and `backend`
(the framework Keras runs on), and packs them in the `storage` format; `reading` (`read_run`)
and `plugin` (TensorBoard) read them back without TensorFlow or Keras.

Public names are imported lazily, so that TensorBoard loads the plugin without Keras.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "CNNViz": ("tb_cnnviz.capture.callback", "CNNViz"),
    "explain": ("tb_cnnviz.explanations.gradcam", "explain"),
    "gradcam": ("tb_cnnviz.explanations.gradcam", "gradcam"),
    "gradcam_plus_plus": ("tb_cnnviz.explanations.gradcam", "gradcam_plus_plus"),
    "read_run": ("tb_cnnviz.reading.reader", "read_run"),
    "sanity_check": ("tb_cnnviz.explanations.sanity", "sanity_check"),
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # what editors and type checkers see; at run time, `__getattr__` imports them
    from tb_cnnviz.capture.callback import CNNViz
    from tb_cnnviz.explanations.gradcam import explain, gradcam, gradcam_plus_plus
    from tb_cnnviz.explanations.sanity import sanity_check
    from tb_cnnviz.reading.reader import read_run


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tb_cnnviz' has no attribute {name!r}")
    import importlib

    module_name, attribute = _EXPORTS[name]
    return getattr(importlib.import_module(module_name), attribute)
