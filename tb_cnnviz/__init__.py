"""tb-cnnviz: see inside convolutional networks while they train, in TensorBoard.

Imports are lazy so that TensorBoard can load the plugin entry point without TensorFlow.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "CNNViz": ("tb_cnnviz.callback", "CNNViz"),
    "gradcam": ("tb_cnnviz.probe", "gradcam"),
    "gradcam_plus_plus": ("tb_cnnviz.probe", "gradcam_plus_plus"),
    "read_run": ("tb_cnnviz.reader", "read_run"),
    "sanity_check": ("tb_cnnviz.sanity", "sanity_check"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tb_cnnviz' has no attribute {name!r}")
    import importlib

    module_name, attribute = _EXPORTS[name]
    return getattr(importlib.import_module(module_name), attribute)
