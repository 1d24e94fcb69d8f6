"""The stored layout, without TensorFlow (but as the reference that `upsample` must match): each
kind's arrays round-trip through pack and unpack, heat maps come back at their size, 8-bit
statistics stay within their bound, the run header is checked on read, and the step index,
filter drift and layer names behave."""

import subprocess
import sys
import zlib

import numpy as np
import pytest

from tb_cnnviz.reading import series
from tb_cnnviz.storage import codec, layer_names, maps, run_header, step_index, tensors
from tb_cnnviz.storage.metadata import ACTIVATIONS, FAITHFULNESS, FILTERS, GRADCAM, GRADCAM_PP, RUN_HEADER, FormatError

RNG = np.random.default_rng(4)
ARRAYS = {  # each kind's array as the callback packs it and the readers return it
    RUN_HEADER: RNG.random((3, 8, 6, 3), np.float32),  # probe images (N, H, W, C)
    GRADCAM: RNG.random((3, 8, 6), np.float32),  # (N, H, W)
    ACTIVATIONS: RNG.normal(size=(3, 5, 4, 4)).astype(np.float32),  # (N, channels, h, w)
    FILTERS: RNG.normal(size=(7, 3, 3, 1)).astype(np.float32),  # (filters, kh, kw, c)
}
HEADER = run_header.RunHeader(layers=["a/c1"], conv_layers={"a/c1": {"type": "Conv2D", "output_shape": [8, 6, 4]}},
                          channels={"a/c1": [0, 2]}, filter_channels={}, gradcam_layer="a/c1",
                          stat_names=list(tensors.STAT_NAMES))


MAP_AXES = {RUN_HEADER: (1, 2, 3), GRADCAM: (1, 2), ACTIVATIONS: (2, 3), FILTERS: (1, 2, 3)}  # one stored map
CHANNELS = {ACTIVATIONS: [0, 5, 9, 12, 20], FILTERS: [1, 3, 4, 8, 9, 11, 15]}  # logged channels, as a header lists them


def within_quantisation(decoded, true, axes):
    """|decoded - true| <= (range of that map) / 255, with float32 slack."""
    span = true.max(axis=axes, keepdims=True) - true.min(axis=axes, keepdims=True)
    return bool(np.all(np.abs(decoded - true) <= span / 255 + 1e-6))


def test_format_imports_no_tensorflow():
    code = ("import sys, tb_cnnviz.storage.event, tb_cnnviz.storage.step_index, tb_cnnviz.storage.layer_names; "
            "print('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


@pytest.mark.parametrize("kind", list(ARRAYS))
def test_each_kind_round_trips_and_reads_item_by_item(kind):
    array = ARRAYS[kind]
    blob, *pngs = maps.pack_maps(kind, array, channels=CHANNELS.get(kind))
    header = codec.decode_header(blob)
    unpacked = maps.unpack_maps(kind, header, pngs)
    assert unpacked.shape == array.shape and unpacked.dtype == np.float32
    assert within_quantisation(unpacked, array, MAP_AXES[kind])
    items = [maps.unpack_item(kind, header, png, i) for i, png in enumerate(pngs)]
    np.testing.assert_array_equal(items[maps.FILTERS_ITEM] if kind == FILTERS else np.stack(items), unpacked)
    if kind in CHANNELS:  # the third logged channel: 9 for activations, 4 for filters
        position = maps.channel_position(header, CHANNELS[kind][2])
        assert position == 2
        expected = unpacked[2] if kind == FILTERS else unpacked[:, 2]
        np.testing.assert_array_equal(maps.channel(kind, unpacked, position), expected)
        alone = codec.png_to_array(maps.map_png(header, pngs[0], position))
        assert alone.shape == (expected.shape if kind == FILTERS else expected.shape[1:] + (1,))


def test_the_run_header_is_checked_on_read():
    images = ARRAYS[RUN_HEADER]
    blob, *pngs = run_header.pack_run_header(images, HEADER)
    stored = codec.decode_header(blob)
    assert run_header.unpack_run_header(stored, 1 + len(pngs)) == HEADER
    assert run_header.probe_shape(stored) == (3, [8, 6, 3])
    with pytest.raises(FormatError, match="missing 'probe images'"):
        run_header.unpack_run_header(stored, len(pngs))
    with pytest.raises(FormatError, match=r"missing \['shape', 'layers', 'gradcam_layer'\]"):
        run_header.RunHeader.from_stored({k: v for k, v in stored.items() if k not in ("shape", "layers", "gradcam_layer")})
    with pytest.raises(FormatError, match=r"wrong type: \['channels'\]"):
        run_header.RunHeader.from_stored({**stored, "channels": "all"})
    grey = maps.unpack_maps(RUN_HEADER, codec.decode_header(run_header.pack_run_header(np.ones((1, 4, 4, 2)), HEADER)[0]),
                              run_header.pack_run_header(np.ones((1, 4, 4, 2)), HEADER)[1:])
    assert grey.shape == (1, 4, 4, 1)  # neither grey nor RGB: stored as the channel mean


def test_filter_drift_keeps_complete_events_with_statistics():
    stats = {0: np.zeros((5, 4)), 3: np.ones((5, 4)), 9: np.full((5, 4), 2.0)}
    steps, matrix = series.filter_drift(HEADER, "a/c1", [0, 3, 6], stats, "cos_to_first")
    assert steps.tolist() == [0, 3] and matrix.tolist() == [[0.0, 1.0]] * 4
    steps, matrix = series.filter_drift(HEADER, "a/c1", [], stats, "norm")
    assert steps.shape == (0,) and matrix.shape == (4, 0)  # the layer's 4 filters, no steps
    with pytest.raises(KeyError, match="unknown stat 'nope'"):
        series.filter_drift(HEADER, "a/c1", [0], stats, "nope")
    assert series.scalar_series([0, 3, 6], {0: np.float32(0.5), 6: np.float32(0.25)}) == ([0, 6], [0.5, 0.25])


def test_layer_names_resolve_by_path_or_unambiguous_short_name():
    paths = ["vgg16/block1_conv1", "head/conv", "tail/conv"]
    assert layer_names.resolve_layer("block1_conv1", paths) == layer_names.resolve_layer("vgg16/block1_conv1", paths)
    with pytest.raises(layer_names.UnknownLayer, match="ambiguous.*head/conv") as ambiguous:
        layer_names.resolve_layer("conv", paths)
    assert ambiguous.value.ambiguous == ["head/conv", "tail/conv"]
    with pytest.raises(KeyError, match="not logged") as unknown:
        layer_names.resolve_layer("nope", paths)
    assert unknown.value.valid == paths


def test_step_index_marks_what_is_damaged_or_missing():
    good = codec.decode_header(maps.pack_maps(GRADCAM, ARRAYS[GRADCAM], layer="a/c1")[0])
    index = {GRADCAM: good, GRADCAM_PP: {"shape": [1]}, ACTIVATIONS: {}, FILTERS: {}, FAITHFULNESS: 0.5}
    checked = step_index.checked_step_index(index, HEADER, step=4)
    assert checked[GRADCAM] == good and "bad shape" in checked[GRADCAM_PP]["error"]
    assert checked[ACTIVATIONS] == {"a/c1": {"error": "no activations of 'a/c1' at step 4"}}
    assert checked[FAITHFULNESS] == 0.5
    with pytest.raises(FormatError, match="damaged cnnviz step index"):
        step_index.checked_step_index(["not", "an", "index"], HEADER, step=4)

    def read_header(tag):  # a step written without an index, whose Grad-CAM++ is damaged
        if tag.endswith(GRADCAM_PP):
            raise FormatError("damaged")
        return good

    assert step_index.step_tags(HEADER, "eval") == ["eval/gradcam", "eval/gradcam_pp", "eval/activations/a/c1"]
    read = step_index.read_step_index(HEADER, "eval", read_header, None)
    assert read == {GRADCAM: good, GRADCAM_PP: {"error": "damaged"}, ACTIVATIONS: {"a/c1": good}, FILTERS: {},
                    FAITHFULNESS: None}


def test_heat_maps_stored_at_layer_resolution_read_at_their_size():
    heat_maps = RNG.random((2, 3, 5), np.float32)  # (N, h, w) at the layer's resolution
    blobs = maps.pack_maps(GRADCAM, heat_maps, layer="a/c1", size=[12, 20])
    header = codec.decode_header(blobs[0])
    assert header["shape"] == [2, 1, 3, 5, 1] and header["version"] == 2
    read = maps.unpack_maps(GRADCAM, header, list(blobs[1:]))
    assert read.shape == (2, 12, 20)
    np.testing.assert_allclose(read, maps.upsample(codec.decode_maps(header, list(blobs[1:]))[:, 0, :, :, 0],
                                                     (12, 20)))
    np.testing.assert_allclose(maps.unpack_item(GRADCAM, header, blobs[2], 1), read[1])
    with pytest.raises(FormatError, match="bad size"):
        maps.unpack_item(GRADCAM, {**header, "size": [12]}, blobs[2], 1)


@pytest.mark.parametrize("size, to", [((3, 5), (12, 20)), ((7, 7), (224, 224)), ((4, 6), (17, 9)), ((5, 5), (5, 5)),
                                      ((1, 3), (4, 4))])
def test_upsample_is_tf_image_resize_bilinear(size, to):
    import tensorflow as tf  # the reference only: storage imports no TensorFlow

    heat_maps = RNG.normal(size=(2, *size)).astype(np.float32)
    expected = tf.image.resize(heat_maps[..., None], to, method="bilinear")[..., 0].numpy()
    np.testing.assert_allclose(maps.upsample(heat_maps, to), expected, rtol=1e-5, atol=1e-6)


def test_statistics_stored_in_8_bits_within_half_a_level_of_their_range():
    stats = RNG.normal(size=(5, 300)).astype(np.float32) * [[1], [1e-6], [1e3], [0], [1e-30]]
    stats[2, 7] = np.nan
    stats[1, 0] = np.inf
    stats[4] = np.nan  # cos_to_prev of a mode's first event
    packed = tensors.pack_stats(stats)
    assert packed.dtype == np.uint8 and packed.ndim == 1 and packed.size < 5 * (tensors.STATS_RANGE_BYTES + 300)
    unpacked = tensors.unpack_tensor(packed, "test")
    assert unpacked.dtype == np.float32 and unpacked.shape == stats.shape
    finite = np.isfinite(stats)
    np.testing.assert_array_equal(np.isnan(unpacked), ~finite)
    for row, values in enumerate(stats):
        kept = values[finite[row]]
        if kept.size:
            bound = (kept.max() - kept.min()) / 508
            assert np.all(np.abs(unpacked[row][finite[row]] - kept) <= bound * 1.0001 + 1e-45)
    assert np.all(unpacked[3] == 0)  # a constant row is exact
    for foreign in (np.zeros(3, np.uint8), np.zeros((5, 20), np.uint8), np.frombuffer(zlib.compress(b"abc"), np.uint8)):
        with pytest.raises(FormatError, match="'train/stats/x' holds 8-bit data that is not cnnviz statistics"):
            tensors.unpack_tensor(foreign, "'train/stats/x'")
