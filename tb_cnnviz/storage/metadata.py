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
METHOD_MAPS = "method_maps"  # the target class's maps by a method other than Grad-CAM and Grad-CAM++
METHOD_METRICS = "method_metrics"  # per-probe trust figures of a method other than Grad-CAM (METRICS)

# The explanation methods a run may log (`tb_cnnviz.explanations.gradcam.PARAMETERS`): Grad-CAM's maps
# and trust figures are GRADCAM and METRICS, Grad-CAM++'s maps GRADCAM_PP; every other method's are
# METHOD_MAPS, and every method's but Grad-CAM's figures METHOD_METRICS, tagged with its name.
METHODS = ("gradcam", "gradcam_pp", "hirescam", "xgradcam", "layercam", "eigencam", "scorecam", "smoothgrad",
           "integrated_gradients")
PIXEL_METHODS = ("smoothgrad", "integrated_gradients")  # attributions to the input's pixels, stored at its size

BLOB_KINDS = (RUN_HEADER, PREDICTIONS, GRADCAM, GRADCAM_PP, ACTIVATIONS, FILTERS, MASKS, CLASS_MAPS, TOP_EXAMPLES,
              FEATURE_VIS, REFERENCE, METHOD_MAPS)
TENSOR_KINDS = (STATS, FAITHFULNESS, METRICS, METHOD_METRICS)
LAYER_KINDS = (ACTIVATIONS, FILTERS, STATS, TOP_EXAMPLES, FEATURE_VIS)
METHOD_KINDS = (METHOD_MAPS, METHOD_METRICS)  # their tags end in a method's name where others' end in a layer path
NAMED_KINDS = LAYER_KINDS + METHOD_KINDS
RUN_KINDS = (RUN_HEADER, REFERENCE)  # once per run: their tags have no mode


SCALAR = "scalar"  # an ordinary TensorBoard scalar (the Scalars tab's), not a cnnviz summary


def scalar_tag(mode: str, name: str, method: str = "gradcam") -> str:
    """Tag of the scalar copy of a trust figure: `cnnviz/<mode>/<name>` of Grad-CAM's,
    `cnnviz/<mode>/<method>/<name>` of another method's."""
    return f"{PLUGIN_NAME}/{mode}/{name}" if method == "gradcam" else f"{PLUGIN_NAME}/{mode}/{method}/{name}"


class FormatError(ValueError):
    """Summary data this version of tb_cnnviz cannot interpret."""


class Tag(NamedTuple):
    kind: str
    mode: str | None
    name: str | None  # the layer path of LAYER_KINDS, the method of METHOD_KINDS


def tag(kind: str, mode: str | None = None, name: str | None = None) -> str:
    """Tag of a summary: `probes` (the run header), `reference`, `<mode>/<kind>`,
    `<mode>/<kind>/<layer path>` (LAYER_KINDS) or `<mode>/<kind>/<method>` (METHOD_KINDS).

    Raises:
      ValueError: an unknown mode, or a name given to a kind that takes none (or missing).
    """
    if kind in RUN_KINDS:
        return kind
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if (kind in NAMED_KINDS) != (name is not None):
        raise ValueError(f"kind {kind!r} {'needs' if kind in NAMED_KINDS else 'takes no'} layer or method")
    return "/".join(p for p in (mode, kind, name) if p is not None)


def parse_tag(name: str) -> Tag:
    """Inverse of `tag`; the layer may itself contain '/'. Raises FormatError for other tags."""
    if name in RUN_KINDS:
        return Tag(name, None, None)
    parts = name.split("/", 2)
    if len(parts) < 2 or parts[0] not in MODES or parts[1] not in BLOB_KINDS + TENSOR_KINDS:
        raise FormatError(f"not a cnnviz tag: {name!r}")
    kind = parts[1]
    named = parts[2] if len(parts) == 3 else None
    if (kind in NAMED_KINDS) != (named is not None):
        raise FormatError(f"not a cnnviz tag: {name!r}")
    return Tag(kind, parts[0], named)


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
