"""Default layers: the output conv of each stage, for backbones people use and small models."""

import keras
import numpy as np
import pytest

from demo.model import vgg_style
from tb_cnnviz.anatomy.conv_layers import conv_layers, conv_output_shapes
from tb_cnnviz.anatomy.stages import stage_outputs

# The same at 224x224 (checked by hand); CI builds the backbones at 96x96 to stay fast.
PICKS = {
    "VGG16": ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"],
    "ResNet50": ["conv1_conv", "conv2_block3_3_conv", "conv3_block4_3_conv", "conv4_block6_3_conv",
                 "conv5_block3_3_conv"],
    # not block_1_expand etc. (1x1 convs that only feed the next strided depthwise conv)
    "MobileNetV2": ["expanded_conv_project", "block_2_project", "block_5_project", "block_12_project", "Conv_1"],
}


def picks(model, images=None):
    return stage_outputs(model, conv_output_shapes(model, conv_layers(model), images))


@pytest.fixture(scope="module", params=sorted(PICKS))
def backbone(request):
    """(application name, backbone without weights or top at 96x96), built once per module."""
    app = getattr(keras.applications, request.param)
    return request.param, app(weights=None, include_top=False, input_shape=(96, 96, 3))


def test_backbone_stages(backbone):
    name, model = backbone
    assert picks(model) == PICKS[name]


def test_nested_backbone_keeps_its_picks_under_its_name(backbone):
    name, model = backbone
    inputs = keras.Input((96, 96, 3))
    features = keras.layers.GlobalAveragePooling2D()(model(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(4)(features))
    assert picks(classifier) == [f"{model.name}/{path}" for path in PICKS[name]]


def chain(size=32):
    """Two stages of plain convs, then a MobileNetV2-style block: 1x1 expand, strided depthwise,
    1x1 project."""
    return [
        keras.Input((size, size, 3)),
        keras.layers.Conv2D(8, 3, padding="same", name="conv1"),
        keras.layers.Conv2D(8, 3, padding="same", name="conv2"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, padding="same", name="conv3"),
        keras.layers.Conv2D(48, 1, name="expand"),
        keras.layers.ReLU(),
        keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="depthwise"),
        keras.layers.Conv2D(16, 1, name="project"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4),
    ]


def test_sequential_is_read_as_a_chain():
    assert picks(keras.Sequential(chain(), name="seq")) == ["conv2", "conv3", "project"]


def test_sequential_nested_in_a_functional_model():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.Sequential(chain(), name="seq")(inputs))
    assert picks(model) == ["seq/conv2", "seq/conv3", "seq/project"]


def test_demo_model():
    assert picks(vgg_style(40)) == ["block1_conv2", "block2_conv2", "block3_conv2"]


def test_subclassed_model_falls_back_to_the_last_conv_at_each_resolution():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.body = chain()[1:-2]

        def call(self, x):
            for layer in self.body:
                x = layer(x)
            return x

    # no graph to tell the expansion conv apart
    assert picks(Subclassed(), np.zeros((1, 32, 32, 3), "float32")) == ["conv2", "expand", "project"]


def test_dynamic_size_gives_the_last_conv():
    model = keras.Sequential([keras.Input((None, None, 3)), *chain()[1:]])
    assert picks(model) == ["project"]
