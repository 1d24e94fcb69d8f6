"""Feature visualisation (tb_cnnviz.explanations.feature_vis): the generated image activates its filter more
than any training image does, on the trained model, and has less high-frequency power than the
1/f parameterisation and jitter alone give; bench/feature_vis_seeds.py and
bench/feature_vis_readable.py show it over seeds. The regularisers' parts (colour decorrelation,
scale and rotation, total variation) agree with independent NumPy and SciPy computations."""

import types

import keras
import numpy as np
import pytest
from scipy import ndimage

from tests.helpers import small_cnn
from tb_cnnviz.anatomy import conv_layers as layer_utils
from tb_cnnviz.datasets import training_shapes
from tb_cnnviz.explanations import feature_vis
from tb_cnnviz.explanations.feature_vis import FeatureVisualiser, Regularisers
from tb_cnnviz.anatomy.model_inputs import Samples


def map_summaries(model, images, channels, batch=250) -> dict:
    """{path: (means, peaks)}, each (N, len(channels[path])): the mean and the max of each chosen
    channel's map, for each image."""
    convs = layer_utils.conv_layers(model)
    sub = keras.Model(model.input, {path: convs[path].output for path in channels})
    summaries = {path: ([], []) for path in channels}
    for start in range(0, len(images), batch):
        for path, maps in sub(images[start:start + batch], training=False).items():
            maps = keras.ops.convert_to_numpy(maps).astype(np.float32)[..., channels[path]]
            summaries[path][0].append(maps.mean(axis=(1, 2)))
            summaries[path][1].append(maps.max(axis=(1, 2)))
    return {path: (np.concatenate(means), np.concatenate(peaks)) for path, (means, peaks) in summaries.items()}


def high_frequency_share(images) -> np.ndarray:
    """(N,) the share of each (N, H, W, C) image's spectral power above half the Nyquist frequency:
    each channel's mean removed, |2-D DFT|^2 summed over the channels, the power at radial
    frequency hypot(fy, fx) > 0.25 cycles/pixel over the total (0 for a flat image)."""
    images = np.asarray(images, np.float64)
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(centred, axes=(1, 2))) ** 2).sum(axis=3)
    radius = np.hypot(np.fft.fftfreq(images.shape[1])[:, None], np.fft.fftfreq(images.shape[2])[None, :])
    total = power.sum(axis=(1, 2))
    return np.divide(power[:, radius > 0.25].sum(axis=1), total, out=np.zeros_like(total), where=total > 0)


def reference_images():
    """The 3,000 images `helpers.train_shapes_model` trains on (they do not depend on its seed)."""
    return training_shapes(3000, size=40, smooth=0.5)[0]


def compare(model, generated, references, channels):
    """([(path, channel, generated mean / best reference mean, generated peak / best reference
    peak)] for each channel that some reference image activates, [(path, channel)] of the dead
    ones: never positive on the references)."""
    reference_summaries = map_summaries(model, references, channels)
    ratios, dead = [], []
    for path, indices in channels.items():
        reference_means, reference_peaks = reference_summaries[path]
        summaries = map_summaries(model, generated[path], {path: indices})[path]
        means, peaks = (np.diagonal(summary) for summary in summaries)  # each image on its own channel
        for i, channel in enumerate(indices):
            best_mean, best_peak = reference_means[:, i].max(), reference_peaks[:, i].max()
            if best_peak <= 0:
                dead.append((path, channel))
            else:
                ratios.append((path, channel, means[i] / best_mean, peaks[i] / best_peak))
    return ratios, dead


@pytest.fixture(scope="module")
def visualised(trained):
    """The first 4 channels of every conv layer of the trained model, generated once."""
    channels = {path: [0, 1, 2, 3] for path in layer_utils.conv_layers(trained.model)}
    references = reference_images()
    visualiser = FeatureVisualiser(trained.model, channels, image_shape=references.shape[1:],
                                   value_range=(references.min(), references.max()))
    return types.SimpleNamespace(visualiser=visualiser, channels=channels, references=references,
                                 images=visualiser())


@pytest.mark.slow
def test_each_image_activates_its_filter_more_than_any_training_image(trained, visualised):
    ratios, dead = compare(trained.model, visualised.images, visualised.references, visualised.channels)
    assert len(ratios) >= 20, f"dead channels {dead}: too few left to check"
    beaten = [(path, channel, round(float(mean), 2)) for path, channel, mean, _ in ratios if not mean > 1]
    assert not beaten, f"(layer, channel, generated / best training image's mean activation): {beaten}"


@pytest.mark.slow
def test_images_have_half_the_high_frequency_power_of_the_plain_ascent(trained, visualised):
    plain = Regularisers(learning_rate=0.2, decorrelate=False, scale=0.0, rotation=0.0, total_variation=0.0)
    before = FeatureVisualiser(trained.model, visualised.channels, image_shape=visualised.references.shape[1:],
                               value_range=(visualised.references.min(), visualised.references.max()),
                               regularisers=plain)()
    share, plain_share = (high_frequency_share(np.concatenate(list(images.values())))
                          for images in (visualised.images, before))
    assert share.mean() <= 0.5 * plain_share.mean(), (share.mean(), plain_share.mean())


@pytest.mark.slow
def test_images_are_float32_within_the_value_range(visualised):
    low, high = visualised.references.min(), visualised.references.max()
    assert list(visualised.images) == list(visualised.channels)
    for images in visualised.images.values():
        assert images.shape == (4, 40, 40, 3) and images.dtype == np.float32
        assert low <= images.min() and images.max() <= high


@pytest.mark.slow
def test_the_same_weights_give_the_same_images(visualised):
    again = visualised.visualiser()
    for path, images in visualised.images.items():
        np.testing.assert_allclose(again[path], images, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_images_follow_the_weights_without_a_new_visualiser():
    keras.utils.set_random_seed(0)
    model = small_cnn(size=16)
    channels = {"conv1": [0, 5], "sep2": [11], "dw3": [3], "conv4": [15]}
    settings = dict(image_shape=(16, 16, 3), value_range=(-1.5, 2.5), steps=16)
    visualiser = FeatureVisualiser(model, channels, **settings)
    before = visualiser()
    keras.utils.set_random_seed(1)
    model.set_weights(small_cnn(size=16).get_weights())
    after = visualiser()
    fresh = FeatureVisualiser(model, channels, **settings)()
    for path in channels:
        assert after[path].shape == (len(channels[path]), 16, 16, 3)
        assert -1.5 <= after[path].min() and after[path].max() <= 2.5
        assert np.abs(after[path] - before[path]).max() > 0.1, path
        np.testing.assert_allclose(after[path], fresh[path], atol=1e-5, rtol=0)


def image_and_vector_model():
    """A conv layer that sees the image alone, and one that sees its maps weighted by a vector
    input (one weight per map)."""
    image, vector = keras.Input((16, 16, 3), name="image"), keras.Input((4,), name="vector")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="seen")(image)
    weights = keras.layers.UpSampling2D(16)(keras.layers.Reshape((1, 1, 4))(vector))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="mixed")(
        keras.layers.Multiply()([x, weights]))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model({"image": image, "vector": vector}, outputs)


@pytest.mark.slow
def test_a_multi_input_model_holds_the_other_inputs_fixed():
    keras.utils.set_random_seed(0)
    model = image_and_vector_model()
    visualiser = FeatureVisualiser(model, {"seen": [0, 1], "mixed": [2]}, image_shape=(16, 16, 3),
                                   value_range=(0, 1), image_input="image", steps=16)
    image = np.full((1, 16, 16, 3), 0.5, np.float32)
    first, second = (visualiser(Samples({"image": image, "vector": np.array([vector], np.float32)}, "image"))
                     for vector in ([1, 1, 1, 1], [1, -1, 1, -1]))
    assert first["seen"].shape == (2, 16, 16, 3) and first["mixed"].shape == (1, 16, 16, 3)
    np.testing.assert_allclose(first["seen"], second["seen"], atol=1e-5, rtol=0)  # it does not see the vector
    assert np.abs(first["mixed"] - second["mixed"]).max() > 0.01
    with pytest.raises(ValueError, match="one sample"):
        visualiser(Samples({"image": np.repeat(image, 2, 0), "vector": np.zeros((2, 4), np.float32)}, "image"))
    with pytest.raises(ValueError, match="other_inputs"):
        visualiser()


def test_mixed_precision_gives_float32_images():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = small_cnn(size=16)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images = FeatureVisualiser(model, {"conv4": [0, 1]}, image_shape=(16, 16, 3), value_range=(0, 1), steps=8)()
    assert images["conv4"].dtype == np.float32 and np.isfinite(images["conv4"]).all()


@pytest.mark.parametrize("channels, message", [
    ({"conv9": [0]}, "'conv9', which is not a conv layer of the model; give paths among: conv1, sep2, dw3, conv4"),
    ({"head": [0]}, "'head', which is not a conv layer"),
    ({"conv1": [8]}, r"channels\['conv1'\] must be a non-empty list of channel indices in \[0, 8\), got \[8\]"),
    ({"dw3": [-1]}, r"in \[0, 24\), got \[-1\]"),
    ({"conv1": []}, "non-empty"),
    ({"conv1": [0.5]}, "channel indices"),
    ({}, "channels is empty"),
])
def test_bad_channels_say_what_to_give(channels, message):
    with pytest.raises(ValueError, match=message):
        FeatureVisualiser(small_cnn(size=16), channels, image_shape=(16, 16, 3), value_range=(0, 1))


def test_total_variation_is_the_mean_absolute_step_between_neighbours():
    images = np.random.default_rng(0).uniform(-1, 3, (3, 5, 6, 2)).astype(np.float32)
    expected = [(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean()) / 4 for image in images]
    found = keras.ops.convert_to_numpy(feature_vis.total_variation(images, (-1, 3)))
    np.testing.assert_allclose(found, expected, rtol=1e-5)


def test_a_quarter_turn_is_numpys_and_a_roll_alone_is_numpys():
    images = np.random.default_rng(1).random((2, 6, 6, 3)).astype(np.float32)
    turned = feature_vis._transformed(images, np.array([0, 0, 1, np.pi / 2], np.float32), resample=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(turned), np.rot90(images, k=-1, axes=(1, 2)), atol=1e-5)
    rolled = feature_vis._transformed(images, np.array([2, -3, 1, 0], np.float32), resample=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rolled), np.roll(images, (2, -3), axis=(1, 2)))


@pytest.mark.parametrize("shift, scale, degrees", [((0, 0), 1.0, 0.0), ((2, -3), 1.1, 4.0), ((-1, 4), 0.9, -5.0)])
def test_rolled_scaled_and_rotated_images_are_scipys_bilinear_resampling(shift, scale, degrees):
    """Each output pixel takes the bilinear interpolation, wrapping around the edges, at its
    position rotated and scaled about the centre (by the inverse map), less the roll."""
    images = np.random.default_rng(2).random((2, 9, 7, 3)).astype(np.float32)
    angle = np.radians(degrees)
    found = feature_vis._transformed(images, np.array([*shift, scale, angle], np.float32), resample=True)
    rows, columns = np.mgrid[0:9, 0:7].astype(np.float64)
    y, x = rows - 4, columns - 3  # about the centre
    sources = [(np.cos(angle) * y - np.sin(angle) * x) / scale + 4 - shift[0],
               (np.sin(angle) * y + np.cos(angle) * x) / scale + 3 - shift[1]]
    expected = np.stack([np.stack([ndimage.map_coordinates(image[..., c], sources, order=1, mode="grid-wrap")
                                   for c in range(3)], axis=-1) for image in images.astype(np.float64)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(found), expected, atol=1e-5)


@pytest.mark.parametrize("depth, decorrelated", [(3, True), (1, False)])
def test_images_are_the_inverse_dft_in_lucids_decorrelated_colours_squashed_into_the_range(depth, decorrelated):
    inputs = keras.Input((8, 10, depth))
    outputs = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs)
    visualiser = FeatureVisualiser(keras.Model(inputs, outputs), {"conv": [1]}, image_shape=(8, 10, depth),
                                   value_range=(-1, 3), steps=1)
    spectrum = np.random.default_rng(3).normal(0, 0.05, (2, depth, 8, 6, 2)).astype(np.float32)
    half = (spectrum[..., 0] + 1j * spectrum[..., 1]) * feature_vis._frequency_scale(8, 10)
    planes = np.fft.irfft2(half, s=(8, 10)).transpose(0, 2, 3, 1) / 4
    mix = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    if decorrelated:  # Lucid's: the square root of ImageNet's colour correlation, over its largest column norm
        planes = planes @ (mix / np.linalg.norm(mix, axis=0).max()).T
    expected = -1 + 4 / (1 + np.exp(-planes))
    found = visualiser._images(keras.ops.convert_to_tensor(spectrum))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(found), expected, atol=1e-5)


@pytest.mark.parametrize("settings", [dict(learning_rate=0), dict(jitter=1.5), dict(scale=1), dict(rotation=-1),
                                      dict(total_variation=-0.1)])
def test_bad_regularisers_say_what_to_give(settings):
    with pytest.raises(ValueError, match="regularisers must have learning_rate > 0, an int jitter >= 0"):
        Regularisers(**settings)
