"""Model understanding: what tb_cnnviz reads off a Keras model before it logs anything. Its conv
layers and how to record them (`conv_layers`), what its output means (`heads`), how samples
are given to it (`model_inputs`), the layers that end each stage (`stages`), each conv unit's
receptive field (`receptive`), and the checks of models, images and class indices (`checks`).
Keras only: no backend-specific code."""
