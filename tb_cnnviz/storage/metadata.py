"""Tags and summary metadata of the cnnviz plugin: what TensorBoard sees of our summaries.

What a summary holds inside is the other `storage` modules' business.
"""

import json
from typing import NamedTuple

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "cnnviz"
# Bump when the layout of a summary changes; readers refuse versions they do not know and read
# every older one (the `storage` package's docstring says what changed).
FORMAT_VERSION = 2

MODES = ("train", "eval")
# Kinds of model head a run explains (`tb_cnnviz.anatomy.heads`), as run headers name them.
SOFTMAX, BINARY, MULTILABEL, SEGMENTATION = "softmax", "binary", "multilabel", "segmentation"
HEAD_KINDS = (SOFTMAX, BINARY, MULTILABEL, SEGMENTATION)

# Kinds of summary. Blob kinds hold [JSON header, PNG, PNG, ...]; tensor kinds hold a small
# float32 tensor.
RUN_HEADER = "probes"  # the run header with the probe images: once per run, its tag has no mode
PREDICTIONS = "predictions"
GRADCAM = "gradcam"
GRADCAM_PP = "gradcam_pp"
ACTIVATIONS = "activations"
FILTERS = "filters"
STATS = "stats"
FAITHFULNESS = "faithfulness"

MASKS = "masks"  # a segmentation head's predicted masks (format 2)
CLASS_MAPS = "class_maps"  # Grad-CAM and Grad-CAM++ of several classes per probe (format 2)
METRICS = "metrics"  # per-probe trust figures (format 2; `tb_cnnviz.explanations.trust`)
TOP_EXAMPLES = "top_examples"  # each filter's top-activating reference images (format 2; `storage.top_examples`)
FEATURE_VIS = "feature_vis"  # images that maximise chosen filters (format 2; `tb_cnnviz.explanations.feature_vis`)
REFERENCE = "reference"  # the reference images of top examples, once per run when they are not the probes

BLOB_KINDS = (RUN_HEADER, PREDICTIONS, GRADCAM, GRADCAM_PP, ACTIVATIONS, FILTERS, MASKS, CLASS_MAPS, TOP_EXAMPLES,
              FEATURE_VIS, REFERENCE)
TENSOR_KINDS = (STATS, FAITHFULNESS, METRICS)
LAYER_KINDS = (ACTIVATIONS, FILTERS, STATS, TOP_EXAMPLES, FEATURE_VIS)
RUN_KINDS = (RUN_HEADER, REFERENCE)  # once per run: their tags have no mode


SCALAR = "scalar"  # an ordinary TensorBoard scalar (the Scalars tab's), not a cnnviz summary


def scalar_tag(mode: str, name: str) -> str:
    """Tag of the scalar copy of a trust figure: `cnnviz/<mode>/<name>`."""
    return f"{PLUGIN_NAME}/{mode}/{name}"


class FormatError(ValueError):
    """Summary data this version of tb_cnnviz cannot interpret."""


class Tag(NamedTuple):
    kind: str
    mode: str | None
    layer: str | None


def tag(kind: str, mode: str | None = None, layer: str | None = None) -> str:
    """Tag of a summary: `probes` (the run header), `reference`, `<mode>/<kind>` or
    `<mode>/<kind>/<layer path>`.

    Raises:
      ValueError: an unknown mode, or a layer given to a kind that takes none (or missing).
    """
    if kind in RUN_KINDS:
        return kind
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if (kind in LAYER_KINDS) != (layer is not None):
        raise ValueError(f"kind {kind!r} {'needs' if kind in LAYER_KINDS else 'takes no'} layer")
    return "/".join(p for p in (mode, kind, layer) if p is not None)


def parse_tag(name: str) -> Tag:
    """Inverse of `tag`; the layer may itself contain '/'. Raises FormatError for other tags."""
    if name in RUN_KINDS:
        return Tag(name, None, None)
    parts = name.split("/", 2)
    if len(parts) < 2 or parts[0] not in MODES or parts[1] not in BLOB_KINDS + TENSOR_KINDS:
        raise FormatError(f"not a cnnviz tag: {name!r}")
    kind = parts[1]
    layer = parts[2] if len(parts) == 3 else None
    if (kind in LAYER_KINDS) != (layer is not None):
        raise FormatError(f"not a cnnviz tag: {name!r}")
    return Tag(kind, parts[0], layer)


def create_summary_metadata(kind: str) -> summary_pb2.SummaryMetadata:
    """SummaryMetadata with the data_class TensorBoard needs to load the summary at all."""
    content = json.dumps({"version": FORMAT_VERSION, "kind": kind}).encode()
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content),
        data_class=(
            summary_pb2.DATA_CLASS_BLOB_SEQUENCE if kind in BLOB_KINDS else summary_pb2.DATA_CLASS_TENSOR
        ),
    )


def parse_plugin_content(content: bytes) -> dict:
    """The parsed plugin_data.content of a summary (or a blob header, which starts alike).

    Raises:
      FormatError: the bytes are not cnnviz metadata, or were written by a newer format.
    """
    try:
        parsed = json.loads(content.decode("utf-8"))
        version = int(parsed["version"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"unreadable cnnviz metadata: {content[:80]!r}") from exc
    if version > FORMAT_VERSION:
        raise FormatError(
            f"data written by a newer tb_cnnviz (format {version}; this one reads up to "
            f"{FORMAT_VERSION}): upgrade with `pip install -U tb-cnnviz`"
        )
    return parsed


def check_kind(parsed: dict) -> str:
    """The kind of a summary's parsed plugin content; FormatError naming it if this version
    does not know it (a newer tb_cnnviz added it within the same format)."""
    kind = parsed.get("kind")
    if kind not in BLOB_KINDS + TENSOR_KINDS:
        raise FormatError(f"cnnviz summaries of kind {str(kind)[:40]!r}, which this tb_cnnviz does not know, were "
                          f"written by a newer one: upgrade with `pip install -U tb-cnnviz`")
    return kind
