"""Entry point TensorBoard loads at start-up: kept tiny, the plugin is imported in `load`.

An ImportError here would take down the whole `tensorboard` command, so this module imports
nothing but TensorBoard's plugin base.
"""

from tensorboard.plugins import base_plugin

PLUGIN_NAME = "cnnviz"  # same as tb_cnnviz.storage.metadata.PLUGIN_NAME, without importing it
# 0 keeps every logged step. TensorBoard keeps only 10 per series of a third-party plugin
# unless told otherwise; `--samples_per_plugin=cnnviz=N` still wins.
DEFAULT_SAMPLES = 0


class CNNVizLoader(base_plugin.TBLoader):
    def fix_flags(self, flags):
        samples = getattr(flags, "samples_per_plugin", None)
        if isinstance(samples, dict) and PLUGIN_NAME not in samples:
            samples[PLUGIN_NAME] = DEFAULT_SAMPLES

    def load(self, context):
        from tb_cnnviz.plugin.cnnviz_plugin import CNNVizPlugin

        return CNNVizPlugin(context)
