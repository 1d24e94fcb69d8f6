"""The run header: what a run logs (layers, channels, classes, the probes' objects, ...),
written once per run with the probe images under tag `probes`."""

import base64
import dataclasses
import math
import zlib

import numpy as np

from tb_cnnviz.storage.maps import pack_maps
from tb_cnnviz.storage.metadata import RUN_HEADER, FormatError


@dataclasses.dataclass(frozen=True)
class RunHeader:
    """What a run logs, written once per run beside the probe images.

    Layer paths are keys of `conv_layers` ({path: {"type", "output_shape"}}, every conv layer
    of the model in model order); `layers` have activations logged (their `channels`), and the
    layers of `filter_channels` have filter images; layers in `downsampled` have their maps
    stored area-downsampled by that integer factor. `head` is the kind of output explained
    (`tb_cnnviz.anatomy.heads`; a binary head shows 2 classes), `output` its name; `labels` are class
    indices, or each probe's list of true classes for a multi-label head.
    """

    layers: list
    conv_layers: dict
    channels: dict
    filter_channels: dict
    gradcam_layer: str
    stat_names: list
    model: str | None = None
    labels: list | None = None
    class_names: list | None = None
    num_classes: int | None = None
    rgb_filter_layer: str | None = None
    target: str | list | None = None
    faithfulness_fraction: float | None = None
    head: str = "softmax"  # format-1 runs explained softmax heads only
    output: str | None = None
    downsampled: dict = dataclasses.field(default_factory=dict)  # path -> factor of maps stored smaller
    background_class: int | None = None  # a segmentation head's
    gradcam_classes: int | None = None  # top classes explained beside the target and true class
    truth: str | None = None  # "masks" or "boxes": the probes' objects are known (`objects`)
    objects: dict | None = None  # `pack_objects`
    trust_every: int | None = None  # deletion and insertion on every k-th train event, counting the first
    curve_steps: int | None = None  # of deletion and insertion
    # {"k", "reference": PROBES_REFERENCE or OWN_REFERENCE, "count", "layers", "per_event": filters per layer and event}
    top_examples: dict | None = None
    receptive_fields: dict = dataclasses.field(default_factory=dict)  # path -> [h, w, jump y, x, start y, x] or None
    feature_vis: dict = dataclasses.field(default_factory=dict)  # path -> channels given images that maximise them
    filters_every: int | None = None  # own-reference top examples and feature vis: every k-th event
    methods: list | None = None  # of `metadata.METHODS`, whose target maps events log and score, in its order
    expensive_every: int | None = None  # the many-pass methods: every k-th train event (None: trust_every's)

    @classmethod
    def from_stored(cls, stored: dict) -> "RunHeader":
        """The run header in a decoded `probes` header; raises FormatError if it is not one."""
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING and f.name not in stored]
        if "shape" not in stored:
            missing.insert(0, "shape")
        if missing:
            raise FormatError(f"not a cnnviz run header (missing {missing})")
        header = cls(**{f.name: stored[f.name] for f in fields if f.name in stored})
        expected = {"layers": list, "conv_layers": dict, "channels": dict, "filter_channels": dict,
                    "gradcam_layer": str, "stat_names": list}
        wrong = [name for name, kind in expected.items() if not isinstance(getattr(header, name), kind)]
        wrong += [name for name, ok in _filter_fields_ok(header).items() if not ok]
        if wrong:
            raise FormatError(f"not a cnnviz run header (fields of the wrong type: {wrong})")
        return header

    def scored_methods(self) -> list:
        """The methods whose maps events score with the trust figures: the callback's `methods`
        (Grad-CAM++'s maps are logged whatever it says); Grad-CAM alone in runs written before
        `methods` (the frontend's gradcam_maps.js scoredMethods says the same)."""
        return list(self.methods) if isinstance(self.methods, list) else ["gradcam"]

    def stored(self) -> dict:
        return dataclasses.asdict(self)

    def filters(self, path: str) -> int:
        """How many filters (output channels) the conv layer at `path` has."""
        return self.conv_layers[path]["output_shape"][-1]


def _filter_fields_ok(header: RunHeader) -> dict:
    """{field: usable} of the run header's fields about filters, which routes index with."""
    def ints(values, least=0):
        return isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= least
                                                for v in values)

    def field_ok(field):  # [h, w, jump y, jump x, start y, start x] or None
        return field is None or (isinstance(field, list) and len(field) == 6 and ints(field[:4], 1)
                                 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in field[4:]))

    top = header.top_examples
    return {
        "receptive_fields": isinstance(header.receptive_fields, dict)
        and all(field_ok(field) for field in header.receptive_fields.values()),
        "top_examples": top is None or (isinstance(top, dict) and isinstance(top.get("layers"), list)
                                        and all(isinstance(path, str) for path in top["layers"])),
        "feature_vis": isinstance(header.feature_vis, dict) and all(ints(c) for c in header.feature_vis.values()),
    }


def pack_objects(masks: np.ndarray | None, boxes: list | None) -> dict | None:
    """The run header's record of the probes' objects: boxes as given, or masks (N, H, W) as
    deflated bits."""
    if boxes is not None:
        return {"boxes": [list(map(int, box)) for box in boxes]}
    if masks is None:
        return None
    bits = zlib.compress(np.packbits(np.asarray(masks, bool)).tobytes(), 6)
    return {"shape": list(masks.shape), "bits": base64.b64encode(bits).decode("ascii")}


def object_masks(run: RunHeader, shape: tuple) -> np.ndarray | None:
    """(N, H, W) bool masks of the probes' objects (None: not known); `shape` is (N, H, W) of
    the probe images, which boxes ([y0, x0, y1, x1], half-open) are drawn on."""
    objects = run.objects
    if objects is None:
        return None
    try:
        if "boxes" in objects:
            masks = np.zeros(shape, bool)
            for mask, (y0, x0, y1, x1) in zip(masks, objects["boxes"]):
                mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
            return masks
        count = int(np.prod(objects["shape"]))
        bits = np.frombuffer(zlib.decompress(base64.b64decode(objects["bits"])), np.uint8)
        return np.unpackbits(bits, count=count).astype(bool).reshape(objects["shape"])
    except (KeyError, TypeError, ValueError, zlib.error) as error:
        raise FormatError(f"damaged object masks in the cnnviz run header: {error}") from None


def probe_shape(stored: dict) -> tuple:
    """(probe count, image shape [H, W, C] as stored) of a decoded run header summary."""
    shape = stored["shape"]
    return shape[0], shape[2:]


def shown_images(images: np.ndarray) -> np.ndarray:
    """Images (N, H, W, C) as stored and shown: grey or RGB as they are, other channel counts
    as their mean."""
    return images if images.shape[-1] in (1, 3) else images.mean(axis=-1, keepdims=True)


def pack_run_header(images: np.ndarray, header: RunHeader) -> np.ndarray:
    """The run header summary: probe images (N, H, W, C, `shown_images`) and the header's fields."""
    return pack_maps(RUN_HEADER, shown_images(images), **header.stored())


def unpack_run_header(stored: dict, blob_count: int) -> RunHeader:
    """The RunHeader of a decoded `probes` header whose summary holds `blob_count` blobs."""
    header = RunHeader.from_stored(stored)
    if blob_count != 1 + stored["shape"][0]:
        raise FormatError("not a cnnviz run header (missing 'probe images')")
    return header



def labels_stored(labels: np.ndarray | None) -> list | None:
    """Labels as runs store them: class indices, or for multi-hot rows each probe's true classes."""
    if labels is None:
        return None
    if labels.ndim == 2:
        return [np.flatnonzero(row).tolist() for row in labels]
    return labels.tolist()


def unit_box(field, position) -> tuple:
    """(y0, x0, y1, x1), half-open in input pixels, that unit `position` (y, x) of a layer reads,
    given its receptive field as the run header stores it: [height, width, jump y, jump x, start
    y, start x] (unit (y, x) sees the box of that size centred on start + (y, x) * jump; see
    `tb_cnnviz.anatomy.receptive`). Corners round half up (whole numbers for the fields it
    finds). The box may reach past the image, into the padding."""
    y0, x0 = (math.floor(field[4 + axis] + position[axis] * field[2 + axis] - field[axis] / 2 + 0.5) for axis in (0, 1))
    return y0, x0, y0 + field[0], x0 + field[1]
