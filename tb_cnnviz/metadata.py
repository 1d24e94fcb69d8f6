"""Summary metadata and tag names for the cnnviz plugin.

Kept free of TensorFlow so the TensorBoard plugin and the reader can import it cheaply.
"""

import json

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "cnnviz"
# Bump when the layout of a summary changes; readers refuse versions they do not know.
FORMAT_VERSION = 1

MODES = ("train", "eval")

# Kinds of summary one logging event writes. Blob kinds hold [JSON header, PNG, PNG, ...];
# tensor kinds hold a small float32 tensor.
PROBES = "probes"  # logged once per run, tag has no mode
PREDICTIONS = "predictions"
GRADCAM = "gradcam"
GRADCAM_PP = "gradcam_pp"
ACTIVATIONS = "activations"
FILTERS = "filters"
STATS = "stats"
FAITHFULNESS = "faithfulness"

BLOB_KINDS = (PROBES, PREDICTIONS, GRADCAM, GRADCAM_PP, ACTIVATIONS, FILTERS)
TENSOR_KINDS = (STATS, FAITHFULNESS)
LAYER_KINDS = (ACTIVATIONS, FILTERS, STATS)
# Fields every run header (the PROBES summary) has; the plugin relies on them.
RUN_FIELDS = ("shape", "layers", "conv_layers", "channels", "filter_channels", "gradcam_layer", "stat_names")

# Key of the PREDICTIONS header that indexes its step: the headers of the step's other blob
# summaries ({GRADCAM: h, GRADCAM_PP: h, ACTIVATIONS: {layer: h}, FILTERS: {layer: h}}) and
# its FAITHFULNESS value, so a step's overview is one read. Runs written before it lack it.
STEP_INDEX = "summaries"

# Rows of a STATS tensor, shape (len(STAT_NAMES), filters).
STAT_NAMES = ("norm", "cos_to_first", "cos_to_prev", "mean_activation", "dead_fraction")


class FormatError(ValueError):
    """Summary data this version of tb_cnnviz cannot interpret."""


def tag(kind, mode=None, layer=None):
    """Tag for a summary: `probes`, `<mode>/<kind>` or `<mode>/<kind>/<layer path>`."""
    if kind == PROBES:
        return PROBES
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if (kind in LAYER_KINDS) != (layer is not None):
        raise ValueError(f"kind {kind!r} {'needs' if kind in LAYER_KINDS else 'takes no'} layer")
    return "/".join(p for p in (mode, kind, layer) if p is not None)


def parse_tag(name):
    """Inverse of `tag`: returns (kind, mode, layer); layer may itself contain '/'."""
    if name == PROBES:
        return PROBES, None, None
    parts = name.split("/", 2)
    if len(parts) < 2 or parts[0] not in MODES or parts[1] not in BLOB_KINDS + TENSOR_KINDS:
        raise FormatError(f"not a cnnviz tag: {name!r}")
    kind = parts[1]
    layer = parts[2] if len(parts) == 3 else None
    if (kind in LAYER_KINDS) != (layer is not None):
        raise FormatError(f"not a cnnviz tag: {name!r}")
    return kind, parts[0], layer


def create_summary_metadata(kind):
    """SummaryMetadata with the data_class TensorBoard needs to load the summary at all."""
    content = json.dumps({"version": FORMAT_VERSION, "kind": kind}).encode()
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME, content=content
        ),
        data_class=(
            summary_pb2.DATA_CLASS_BLOB_SEQUENCE
            if kind in BLOB_KINDS
            else summary_pb2.DATA_CLASS_TENSOR
        ),
    )


def parse_plugin_content(content):
    """Checks the plugin_data.content of a summary; returns its dict or raises FormatError."""
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


def resolve_layer(name, paths):
    """Path among `paths` for a full layer path or an unambiguous short name, else KeyError."""
    if name in paths:
        return name
    matches = [p for p in paths if p.rsplit("/", 1)[-1] == name]
    if len(matches) != 1:
        raise KeyError(f"layer {name!r} not logged; choose one of {list(paths)}")
    return matches[0]
