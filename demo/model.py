"""Models for the demo: a small VGG-style CNN, or VGG16 itself as a nested backbone. Both
carry VGG16's layer names (block1_conv1 … ), the ones the classic visualisations show."""

import keras


def vgg_style(size=40, classes=4, widths=(16, 32, 64), convs=None):
    """block{b}_conv{1,2} (ReLU) for each width, pooling between blocks, GAP and a softmax head;
    `convs`, one count per block, gives blocks more convs (as VGG16's (2, 2, 3, 3, 3)).

    Batch normalisation after every conv but the last keeps it learning from any initialisation
    on any CPU (bench/demo_seeds.py trains it over seeds); its momentum of 0.9 lets the moving
    statistics, which the probes are judged with, keep up with the last epoch's weights. The
    last conv, Grad-CAM's layer, feeds the pooling directly.
    """
    convs = convs or (2,) * len(widths)
    inputs = keras.Input((size, size, 3))
    x = inputs
    for block, (filters, count) in enumerate(zip(widths, convs, strict=True), start=1):
        for conv in range(1, count + 1):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                    name=f"block{block}_conv{conv}")(x)
            if (block, conv) != (len(widths), count):
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn{conv}")(x)
        if block < len(widths):
            x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg_style")


def vgg16_backbone(size=64, classes=4, weights=None):
    """keras.applications.VGG16 (no top) nested in a classifier; `weights` may be a local .h5
    file of VGG16 weights (nothing is downloaded)."""
    backbone = keras.applications.VGG16(weights=weights, include_top=False, input_shape=(size, size, 3))
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone(inputs))
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg16_classifier")
