"""Receptive fields of conv layers: known backbone values, and an independent check by gradients."""

import keras
import numpy as np
import pytest

from tb_cnnviz.anatomy.conv_layers import conv_layers
from tb_cnnviz.anatomy.receptive import ReceptiveField, receptive_fields
from tests.backend_tools import gradient

# VGG16's sizes as the literature gives them (3x3 'same' convs, 2x2 pools).
VGG16_FIELDS = {"block1_conv1": (3, 1), "block1_conv2": (5, 1), "block2_conv2": (14, 2),
                "block3_conv3": (40, 4), "block4_conv3": (92, 8), "block5_conv3": (196, 16)}


@pytest.fixture(scope="module")
def vgg16():
    return keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))


def fields(model, **kwargs):
    return receptive_fields(model, list(conv_layers(model)), **kwargs)


def one_conv(padding):
    inputs = keras.Input((8, 8, 1))
    return keras.Model(inputs, keras.layers.Conv2D(1, 3, padding=padding, name="conv")(inputs))


def test_single_conv_follows_the_documented_convention():
    valid, same = fields(one_conv("valid"))["conv"], fields(one_conv("same"))["conv"]
    assert valid == ReceptiveField(size=(3, 3), jump=(1, 1), start=(1.5, 1.5))
    assert valid.box(0, 0) == (0, 0, 3, 3) and valid.box(2, 5) == (2, 5, 5, 8)
    assert same == ReceptiveField(size=(3, 3), jump=(1, 1), start=(0.5, 0.5))
    assert same.box(0, 0) == (-1, -1, 2, 2) and same.box(7, 7) == (6, 6, 9, 9)


def check_vgg16(found, prefix=""):
    for name, (size, jump) in VGG16_FIELDS.items():
        field = found[prefix + name]
        assert (field.size, field.jump) == ((size, size), (jump, jump)), name
    # Every conv is 3x3 'same' (centred: it keeps the centre of unit 0's field) and every pool is
    # 2x2 'valid' stride 2 (unit 0 is centred between the previous map's units 0 and 1, half a
    # jump further). From pixel 0's centre 0.5, the four pools before block5 move it by half
    # their input's jump: 0.5 + 0.5 + 1 + 2 + 4 = 8, so block5_conv3's unit (0, 0) reads
    # 8 -/+ 196 / 2 = [-90, 106), and unit (13, 13), the last of its 14 x 14, 13 * 16 further.
    block5 = found[prefix + "block5_conv3"]
    assert block5.start == (8.0, 8.0)
    assert block5.box(0, 0) == (-90, -90, 106, 106)
    assert block5.box(13, 13) == (118, 118, 314, 314)
    assert found[prefix + "block2_conv2"].start == (1.0, 1.0)


def test_vgg16_matches_the_literature(vgg16):
    check_vgg16(fields(vgg16))


def test_nested_backbone_has_the_same_fields_under_its_name(vgg16):
    inputs = keras.Input((224, 224, 3))
    features = keras.layers.GlobalAveragePooling2D()(vgg16(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(3)(features))
    check_vgg16(fields(classifier), prefix="vgg16/")


@pytest.mark.slow
def test_resnet50_deepest_conv_sees_more_than_the_image():
    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(96, 96, 3))
    found = fields(model)
    assert all(field is not None for field in found.values())
    # ZeroPadding2D(3) then a 7x7 'valid' conv with stride 2: unit 0 reads pixels -3 .. 3
    assert found["conv1_conv"] == ReceptiveField(size=(7, 7), jump=(2, 2), start=(0.5, 0.5))
    deepest = found["conv5_block3_3_conv"]
    assert deepest.size == (483, 483) and deepest.jump == (32, 32)  # ResNet-50's published 483


def gradient_model():
    """Linear layers of every kind the walk follows, with odd sizes so that 'same' padding puts
    its extra pixel before the map along y and not along x. The residual branch reads three rows
    further down than the main one, so its field is not inside the main branch's: their union is
    the field. The crops come after the convs: a conv next to padding on a map that stops short of
    the image's edge reads zeros where its box has image pixels, and would not reach that side."""
    image = keras.Input((45, 47, 2))
    x = keras.layers.ZeroPadding2D(((1, 1), (0, 1)))(image)  # 47 x 48
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="strided")(x)  # 24 x 24
    x = keras.layers.Conv2D(4, 3, dilation_rate=2, name="dilated")(x)  # 20 x 20
    x = keras.layers.MaxPooling2D(2)(x)  # 10 x 10
    main = keras.layers.SeparableConv2D(4, (3, 5), padding="same", name="main")(x)
    shortcut = keras.layers.Conv2D(4, 1, name="shortcut")(x)
    main = keras.layers.Cropping2D(((0, 3), (0, 0)))(main)  # 7 x 10
    shortcut = keras.layers.Cropping2D(((3, 0), (0, 0)))(shortcut)
    x = keras.layers.BatchNormalization()(keras.layers.Add()([main, shortcut]))
    x = keras.layers.DepthwiseConv2D(5, strides=2, padding="same", name="head")(x)  # 4 x 5
    return keras.Model(image, x)


def test_boxes_hold_exactly_the_pixels_that_move_each_unit():
    """The pixels with a non-zero gradient lie in the box, and reach each of its sides that lies
    inside the image: the geometry checked with no arithmetic by hand."""
    keras.utils.set_random_seed(0)
    model = gradient_model()
    height, width = model.input.shape[1:3]
    # a batch: max pooling passes gradient through one pixel of each window, a different one
    # in each random image, so the union over the batch reaches every side of the field
    images = np.random.default_rng(0).normal(size=(6, height, width, 2)).astype(np.float32)
    found = fields(model)
    for path, layer in conv_layers(model).items():
        field = found[path]
        probe = keras.Model(model.input, layer.output)
        rows, cols = layer.output.shape[1:3]
        for y, x in {(0, 0), (rows - 1, cols - 1), (0, cols - 1), (rows - 1, 0), (1, 1), (rows // 2, cols // 2)}:
            _, pixel_gradients = gradient(lambda batch, y=y, x=x: probe(batch)[:, y, x, 1], images)
            moved = np.any(pixel_gradients != 0, axis=(0, 3))
            ys, xs = np.nonzero(moved)
            y0, x0, y1, x1 = field.box(y, x)
            where = f"{path} unit {(y, x)} box {(y0, x0, y1, x1)}"
            assert ys.size, where
            assert y0 <= ys.min() and ys.max() < y1 and x0 <= xs.min() and xs.max() < x1, where
            assert (y0 < 0 or ys.min() == y0) and (y1 > height or ys.max() == y1 - 1), where
            assert (x0 < 0 or xs.min() == x0) and (x1 > width or xs.max() == x1 - 1), where


@pytest.mark.parametrize("blocker", [
    lambda: keras.layers.UpSampling2D(),
    lambda: keras.layers.Conv2DTranspose(4, 3),
    lambda: keras.layers.Lambda(lambda t: t[:, ::-1], output_shape=lambda shape: shape),  # torch cannot infer it
])
def test_a_layer_it_cannot_follow_leaves_later_fields_unknown(blocker):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="before")(inputs)
    x = blocker()(x)
    x = keras.layers.Conv2D(4, 3, name="after")(x)
    x = keras.layers.Conv2D(4, 3, name="later")(keras.layers.ReLU()(x))
    found = fields(keras.Model(inputs, x))
    assert found["before"].size == (3, 3)
    assert found["after"] is None and found["later"] is None


def test_sequential_follows_its_layers():
    model = keras.Sequential([
        keras.Input((20, 20, 3)),
        keras.layers.Conv2D(4, 5, strides=2, name="conv1"),  # 8 x 8
        keras.layers.Dropout(0.5),
        keras.layers.AveragePooling2D(2, strides=1),  # 7 x 7
        keras.layers.Conv2D(4, 3, padding="same", name="conv2"),
    ])
    found = fields(model)
    assert found["conv1"] == ReceptiveField(size=(5, 5), jump=(2, 2), start=(2.5, 2.5))
    # the pool adds one unit (2 pixels), the conv one unit on each side (2 x 2 pixels)
    assert found["conv2"] == ReceptiveField(size=(11, 11), jump=(2, 2), start=(3.5, 3.5))


def test_other_inputs_do_not_count():
    image, mask = keras.Input((16, 16, 3), name="image"), keras.Input((16, 16, 1), name="mask")
    vector = keras.Input((5,))
    x = keras.layers.Conv2D(4, 3, padding="same", name="image_conv")(image)
    hint = keras.layers.Conv2D(4, 7, padding="same", name="mask_conv")(mask)
    x = keras.layers.Conv2D(4, 3, padding="same", name="joint")(keras.layers.Add()([x, hint]))
    flat = keras.layers.Concatenate()([keras.layers.Flatten()(x), vector])
    model = keras.Model([image, mask, vector], keras.layers.Dense(2)(flat))
    for image_input in ("image", 0):
        found = fields(model, image_input=image_input)
        assert found["joint"] == ReceptiveField(size=(5, 5), jump=(1, 1), start=(0.5, 0.5))
        assert found["mask_conv"] is None
    assert fields(model, image_input="mask")["joint"].size == (9, 9)
    with pytest.raises(ValueError, match="2 image inputs"):
        fields(model)
    with pytest.raises(ValueError, match="names no input"):
        fields(model, image_input="photo")


def test_squeeze_excitation_gate_keeps_the_field():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    gate = keras.layers.Reshape((1, 1, 8))(keras.layers.GlobalAveragePooling2D()(x))
    gate = keras.layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(gate)
    x = keras.layers.Multiply()([x, gate])
    x = keras.layers.Conv2D(8, 3, name="after")(x * 2.0)  # a keras.ops multiply
    found = fields(keras.Model(inputs, x))
    assert found["se_expand"] is None  # it sees the whole image
    assert found["after"] == ReceptiveField(size=(5, 5), jump=(1, 1), start=(2.5, 2.5))


def test_unknown_size_blocks_only_where_same_padding_depends_on_it():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="same")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, name="strided_valid")(x)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="strided_same")(x)
    found = fields(keras.Model(inputs, x))
    assert found["same"].start == (0.5, 0.5) and found["strided_valid"].size == (5, 5)
    assert found["strided_same"] is None


def test_a_path_not_in_the_model_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"\['nope'\].*conv"):
        receptive_fields(one_conv("same"), ["conv", "nope"])
