"""The step index: the predictions summary of a step also holds the headers of the step's other
blob summaries and its faithfulness value, so that a step's overview is one read. Format-1
steps, written before the index, are indexed summary by summary (`read_step_index`)."""

from collections.abc import Callable

from tb_cnnviz.storage import codec
from tb_cnnviz.storage.metadata import (ACTIVATIONS, CLASS_MAPS, FAITHFULNESS, FEATURE_VIS, FILTERS, GRADCAM,
                                        GRADCAM_PP, MASKS, METHOD_MAPS, TOP_EXAMPLES, FormatError, tag)
from tb_cnnviz.storage.run_header import RunHeader

# Key of the predictions header that indexes its step: {GRADCAM: header, GRADCAM_PP: header,
# ACTIVATIONS: {layer: header}, FILTERS: {layer: header}, FAITHFULNESS: value}, MASKS: header
# for a segmentation head, TOP_EXAMPLES, FEATURE_VIS: {layer: header} at steps that have them, and
# METHOD_MAPS: {method: header} of the methods besides Grad-CAM and Grad-CAM++ logged at the step.
STEP_INDEX = "summaries"


def unpack_predictions(header: dict) -> tuple:
    """(predictions, step index or None for a step written without one) of a predictions
    summary's decoded header."""
    predictions = dict(header)
    return predictions, predictions.pop(STEP_INDEX, None)


def _layer_groups(run: RunHeader) -> dict:
    """{ACTIVATIONS: layer paths, FILTERS: layer paths} that the run header says a step logs."""
    return {ACTIVATIONS: list(run.layers), FILTERS: list(run.filter_channels)}


def _header_or_error(read: Callable) -> dict:
    try:
        return read()
    except FormatError as error:
        return {"error": str(error)}


def checked_step_index(index, run: RunHeader, step: int) -> dict:
    """A step index with each summary's header checked: a damaged one, or a layer of the run
    header the step lacks, becomes {"error": why}, so the rest of the step stays usable.
    Raises FormatError if the index itself is damaged."""
    groups = _layer_groups(run)
    if not (isinstance(index, dict) and all(isinstance(index.get(g), dict) for g in groups)
            and isinstance(index.get(FAITHFULNESS), (int, float, type(None)))):
        raise FormatError("damaged cnnviz step index in the predictions summary")
    summaries = {
        GRADCAM: _header_or_error(lambda: codec.check_header(index.get(GRADCAM))),
        GRADCAM_PP: _header_or_error(lambda: codec.check_header(index.get(GRADCAM_PP))),
        **{group: {str(path): _header_or_error(lambda h=h: codec.check_header(h)) for path, h in index[group].items()}
           for group in groups},
        FAITHFULNESS: index.get(FAITHFULNESS),
    }
    for kind in (MASKS, CLASS_MAPS):  # a segmentation head's masks; class maps since they were added
        if kind in index:
            summaries[kind] = _header_or_error(lambda k=kind: codec.check_header(index[k]))
    for kind in (TOP_EXAMPLES, FEATURE_VIS, METHOD_MAPS):  # at some steps only
        if isinstance(index.get(kind), dict):
            summaries[kind] = {str(path): _header_or_error(lambda h=h: codec.check_header(h))
                               for path, h in index[kind].items()}
    for group, paths in groups.items():
        for path in paths:  # e.g. a resumed run that logs other layers than this step did
            summaries[group].setdefault(path, {"error": f"no {group} of {path!r} at step {step}"})
    return summaries


def step_tags(run: RunHeader, mode: str) -> list:
    """Tags of the blob summaries a step indexes."""
    return [tag(GRADCAM, mode), tag(GRADCAM_PP, mode),
            *(tag(group, mode, path) for group, paths in _layer_groups(run).items() for path in paths)]


def read_step_index(run: RunHeader, mode: str, read_header: Callable, faithfulness: float | None) -> dict:
    """The step index of a step written without one, built from each of its summaries:
    `read_header(tag)` gives a summary's decoded header (raising FormatError if damaged, which
    makes that summary {"error": why}); `faithfulness` is the step's value, if any."""
    summaries = {GRADCAM: _header_or_error(lambda: read_header(tag(GRADCAM, mode))),
                 GRADCAM_PP: _header_or_error(lambda: read_header(tag(GRADCAM_PP, mode)))}
    for group, paths in _layer_groups(run).items():
        summaries[group] = {path: _header_or_error(lambda g=group, p=path: read_header(tag(g, mode, p)))
                            for path in paths}
    summaries[FAITHFULNESS] = faithfulness
    return summaries


