import json

import numpy as np
import pytest

from tb_cnnviz.storage import codec, metadata


@pytest.mark.parametrize("shape", [(3, 1, 17, 9, 1), (2, 5, 4, 6, 1), (1, 16, 3, 3, 3), (2, 10, 8, 8, 1)])
def test_encode_decode_round_trip_within_quantisation_bound(shape):
    rng = np.random.default_rng(0)
    maps = rng.normal(size=shape).astype(np.float32) * rng.uniform(0.1, 100, shape[:2])[..., None, None, None]
    maps[0, 0] = 7.0  # a constant map decodes exactly
    header, *pngs = codec.encode_maps(maps)
    decoded = codec.decode_maps(codec.decode_header(header), pngs)
    assert decoded.shape == shape
    span = maps.max(axis=(2, 3, 4), keepdims=True) - maps.min(axis=(2, 3, 4), keepdims=True)
    assert np.all(np.abs(decoded - maps) <= span / 510 + 1e-5 * np.abs(maps).max())
    assert np.all(decoded[0, 0] == 7.0)


def test_non_finite_values_do_not_break_encoding():
    maps = np.ones((1, 2, 4, 4, 1), np.float32)
    maps[0, 0, 0, 0] = np.nan
    maps[0, 0, 1, 1] = 5.0
    maps[0, 1] = np.inf
    header = codec.decode_header(codec.encode_maps(maps)[0])
    assert header["lo"] == [[1.0, 0.0]] and header["hi"] == [[5.0, 0.0]] and header["nonfinite"] == [[1, 16]]


def test_header_ranges_are_written_short_and_read_back_as_the_same_float32():
    rng = np.random.default_rng(3)
    values = (rng.normal(size=(6, 50)) * 10.0 ** rng.integers(-40, 38, (6, 50))).astype(np.float32)
    values[0, :6] = [0.0, -0.0, 1.0, np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1e-45]
    text = codec.float32_json(values)
    assert np.array_equal(np.asarray(json.loads(text), np.float32), values)
    assert len(text) < len(json.dumps(values.tolist()))
    with_nan = values.copy()
    with_nan[1, 1] = np.nan
    assert np.isnan(json.loads(codec.float32_json(with_nan))[1][1])


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 1), (5, 3, 3), (64, 300, 1)])
def test_png_writer_output_is_read_back_exactly_by_pillow(shape):
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    png = codec.array_to_png(pixels)
    assert np.array_equal(codec.png_to_array(png), pixels)
    header = {"shape": [1, 1, shape[0], shape[1], shape[2]]}
    assert codec.check_png(header, png) is png


def test_tags_round_trip_with_nested_layer_paths():
    name = metadata.tag(metadata.ACTIVATIONS, "eval", "vgg16/block5_conv3")
    assert name == "eval/activations/vgg16/block5_conv3"
    assert metadata.parse_tag(name) == (metadata.ACTIVATIONS, "eval", "vgg16/block5_conv3")
    assert metadata.parse_tag("probes") == ("probes", None, None)
    with pytest.raises(metadata.FormatError):
        metadata.parse_tag("train/unknown")


def test_newer_format_version_is_refused_with_upgrade_advice():
    content = json.dumps({"version": metadata.FORMAT_VERSION + 1}).encode()
    with pytest.raises(metadata.FormatError, match="upgrade"):
        metadata.parse_plugin_content(content)
    with pytest.raises(metadata.FormatError):
        metadata.parse_plugin_content(b"\xff not json")


def test_every_kind_has_a_data_class():
    for kind in metadata.BLOB_KINDS + metadata.TENSOR_KINDS:
        assert metadata.create_summary_metadata(kind).data_class != 0


@pytest.mark.parametrize("deflate", ["isal", "zlib"])
def test_pngs_written_with_either_deflate_decode_exactly(monkeypatch, deflate):
    if deflate == "zlib":  # the fallback where no isal wheel exists
        monkeypatch.setattr(codec, "isal_zlib", None)
    else:
        assert codec.isal_zlib is not None  # setup.py installs it on this platform
    rng = np.random.default_rng(1)
    for shape in [(1, 1, 1), (17, 9, 1), (30, 40, 3), (200, 160, 1)]:
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        pixels[: shape[0] // 2] = 7  # a run-length-friendly half
        assert np.array_equal(codec.png_to_array(codec.array_to_png(pixels)), pixels)


def test_maps_with_a_tiny_range_keep_their_levels():
    maps = np.zeros((1, 2, 2, 2, 1), np.float32)
    maps[0, 0, 0, 0] = 1e-38  # a near-dead channel: 255 / range overflows float32
    maps[0, 1, 1, 1] = 3e-45  # a denormal range
    header, png = codec.encode_maps(maps)
    levels = codec.item_pixels(codec.decode_header(header), png)[..., 0]  # (2 maps, 2, 2)
    np.testing.assert_array_equal(levels, (maps[0, ..., 0] > 0) * 255)  # each map's maximum is level 255
