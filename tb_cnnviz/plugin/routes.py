"""The plugin's data routes, served under /data/plugin/cnnviz/ (docs/http-api.md).

Each route reads its query parameters (`Query`), calls the HTTP-free lookups of `reading.lookups`
on the requested run and returns a `web.Answer`; `ROUTES` maps paths to them.
"""

import numpy as np

from tb_cnnviz.plugin import web
from tb_cnnviz.plugin.query import Query
from tb_cnnviz.reading import lookups, series
from tb_cnnviz.reading.lookups import NotFound
from tb_cnnviz.storage import codec, maps, run_header
from tb_cnnviz.storage.metadata import (ACTIVATIONS, CLASS_MAPS, FEATURE_VIS, FILTERS, MASKS, RUN_HEADER,
                                        SEGMENTATION, TOP_EXAMPLES, FormatError)
from tb_cnnviz.storage.tensors import METRIC_NAMES, STAT_NAMES, stats_by_name

# A logged step's data only changes if training is resumed from an older checkpoint into the
# same logdir, so per-step answers are cached briefly rather than for a day.
STEP_EXPIRES = 300


def _json(body, expires=0):
    return web.Answer(body, web.JSON, expires)


def _npy(array, expires=STEP_EXPIRES):
    return web.Answer(web.npy(array), web.NPY, expires)


def _png(png):
    return web.Answer(png, web.PNG, STEP_EXPIRES)


# -- the run ----------------------------------------------------------------------------------
def serve_runs(q: Query):
    """Every run with its header (without the probes' objects, served by `object`), and the
    dead_fraction at which the tab calls a filter dead."""
    runs = []
    for name, info in q.store.runs(q.ctx, q.experiment).items():
        if isinstance(info, str):
            runs.append({"run": name, "error": info})
            continue
        samples, image_shape = run_header.probe_shape(info.images)
        header = info.header.stored()
        header.pop("objects")
        runs.append({"run": name, "samples": samples, "image_shape": image_shape, **header,
                     "metric_names": list(METRIC_NAMES), "steps": info.steps})
    return _json({"runs": runs, "dead_at": series.DEAD_AT})


def serve_probe(q: Query):
    return _png(lookups.png_of(q.source(), q.run().probes, q.sample()))


def serve_probes_npy(q: Query):
    return _npy(lookups.maps_of(q.source(), RUN_HEADER, q.run().probes, q.sample(required=False)))


def serve_object(q: Query):
    """Probe `sample`'s object mask as a grey PNG: 255 on the object, 0 elsewhere."""
    run, sample = q.run(), q.sample()
    count, (height, width, _) = run_header.probe_shape(run.images)
    masks = run_header.object_masks(run.header, (count, height, width))
    if masks is None:
        raise NotFound(f"run {web.shown(q.run_name)!r} has no object masks or boxes for its probes (CNNViz "
                       f"masks= or boxes=)")
    return _png(codec.array_to_png(masks[sample, :, :, None].astype(np.uint8) * 255))


# -- one step ---------------------------------------------------------------------------------
def _step_layer(q: Query, kind: str, layers: list, none: str | None = None) -> str:
    """The requested layer at the requested step: one of `layers` (the run header's for `kind`)
    or, by its path, one the step's index lists (a model changed since logged others then); `none`
    is the 404 message for a run with neither."""
    source, mode, step = q.source(), q.mode(), q.step()
    if none is not None and not layers and not lookups.step_layers(source, kind, mode, step):
        raise NotFound(none)
    return q.layer(layers, extra=lambda name: name in lookups.step_layers(source, kind, mode, step))


def _summary(q: Query, kind: str, layers=None) -> tuple:
    """(blobs, header) of a blob summary at the requested step; `layers` lists the run header's
    layer paths the kind may be asked for."""
    path = _step_layer(q, kind, layers) if layers is not None else None
    return lookups.summary(q.source(), kind, q.mode(), q.step(), path)


def _sample_at(q: Query, header: dict, required: bool = True) -> int | None:
    """The requested `sample`, one of the probes a step's summary (its `header`) holds maps of."""
    sample = q.index("sample", required)
    return None if sample is None else lookups.probe_at(header, sample, q.step())


def serve_event(q: Query):
    """A step's overview: predictions and the header of every summary of the step."""
    mode, step = q.mode(), q.step()
    predictions, summaries = lookups.overview(q.source(), mode, step)
    return _json({"run": q.run_name, "mode": mode, "step": step, "predictions": predictions, **summaries},
                 STEP_EXPIRES)


def _class_map(q: Query):
    """(blobs, sample, position) of the requested class's map, or None if no class is asked
    for: the target's map is the method's own summary."""
    if web.param(q.request, "class", required=False) is None:
        return None
    method, step, sample, class_index = q.method(), q.step(), q.index("sample"), q.index("class")  # 400s first
    if method not in maps.CLASS_MAP_METHODS:
        raise NotFound(f"only {' and '.join(maps.CLASS_MAP_METHODS)} store maps of other classes than the target; "
                       f"{method} maps the target alone (leave out class=)", maps.CLASS_MAP_METHODS)
    blobs, position = lookups.class_map(q.source(), q.mode(), step, sample, class_index, method)
    return blobs, sample, position


def _method_maps(q: Query) -> tuple:
    """(kind, blobs, header) of the requested method's maps of the target classes at the requested step."""
    method, mode, step = q.method(), q.mode(), q.step()  # 400s first
    return lookups.method_maps(q.source(), mode, step, method)


def serve_gradcam(q: Query):
    found = _class_map(q)
    if found is not None:
        blobs, sample, position = found
        return _png(maps.map_png(q.source().decoded(blobs), lookups.png_of(q.source(), blobs, sample), position))
    _, blobs, header = _method_maps(q)
    return _png(lookups.png_of(q.source(), blobs, _sample_at(q, header)))


def serve_gradcam_npy(q: Query):
    found = _class_map(q)
    if found is not None:
        blobs, sample, position = found
        return _npy(maps.channel(CLASS_MAPS, lookups.maps_of(q.source(), CLASS_MAPS, blobs, sample), position))
    kind, blobs, header = _method_maps(q)
    return _npy(lookups.maps_of(q.source(), kind, blobs, _sample_at(q, header, required=False)))


def _masks(q: Query) -> tuple:
    if q.run().header.head != SEGMENTATION:
        raise NotFound(f"run {web.shown(q.run_name)!r} has no masks: its head is {q.run().header.head!r}")
    return _summary(q, MASKS)


def serve_mask(q: Query):
    blobs, header = _masks(q)
    return _png(lookups.png_of(q.source(), blobs, _sample_at(q, header)))


def serve_mask_npy(q: Query):
    blobs, header = _masks(q)
    return _npy(lookups.maps_of(q.source(), MASKS, blobs, _sample_at(q, header, required=False)))


def _item(q: Query, kind: str, header: dict, required: bool):
    """The item of a layer's maps asked for: the requested sample's, or a step's filters (one item)."""
    return maps.FILTERS_ITEM if kind == FILTERS else _sample_at(q, header, required)


def _map_png(q: Query, kind: str, layers: list):
    """The stored PNG mosaic of one item of a layer's maps, or the requested channel's map alone."""
    blobs, header = _summary(q, kind, layers)
    position = q.channel(header)
    png = lookups.png_of(q.source(), blobs, _item(q, kind, header, required=True))
    return _png(png if position is None else maps.map_png(header, png, position))


def _map_npy(q: Query, kind: str, layers: list):
    """A layer's maps (or one item's part), or the requested channel's maps alone."""
    blobs, header = _summary(q, kind, layers)
    position = q.channel(header)
    found = lookups.maps_of(q.source(), kind, blobs, _item(q, kind, header, required=False))
    return _npy(found if position is None else maps.channel(kind, found, position))


def serve_activations(q: Query):
    return _map_png(q, ACTIVATIONS, q.run().header.layers)


def serve_activations_npy(q: Query):
    return _map_npy(q, ACTIVATIONS, q.run().header.layers)


def serve_filters(q: Query):
    return _map_png(q, FILTERS, list(q.run().header.filter_channels))


def serve_filters_npy(q: Query):
    return _map_npy(q, FILTERS, list(q.run().header.filter_channels))


def _conv_layer(q: Query) -> str:
    """The requested conv layer: one of the run header's, or by its path one with statistics at
    some step of the mode (a layer the model had at earlier events)."""
    source, mode = q.source(), q.mode()
    return q.layer(list(q.run().header.conv_layers), extra=lambda name: lookups.has_stats(source, mode, name))


def _stats(q: Query):
    step = q.step()
    return lookups.stats(q.source(), q.mode(), step, _conv_layer(q))


def serve_stats(q: Query):
    return _json({name: values.tolist() for name, values in stats_by_name(_stats(q)).items()}, STEP_EXPIRES)


def serve_stats_npy(q: Query):
    return _npy(_stats(q))


# -- what filters learned ---------------------------------------------------------------------
def _filter_examples(q: Query):
    """(layer, channel, its top examples, their patches (k, h, w, C), boxes) at the requested step."""
    layer = _step_layer(q, TOP_EXAMPLES, list((q.run().header.top_examples or {}).get("layers", [])),
                        f"run {web.shown(q.run_name)!r} has no top examples (written before tb_cnnviz logged them)")
    channel = q.index("channel")
    top, patches, boxes = lookups.filter_examples(q.source(), q.mode(), q.step(), layer, channel)
    return layer, channel, top, patches, boxes


def serve_top_examples(q: Query):
    layer, channel, top, patches, boxes = _filter_examples(q)
    return _json({"layer": layer, "channel": channel, **top.of(channel), "boxes": [list(box) for box in boxes],
                  "size": list(patches.shape[1:3]), "reference": top.reference}, STEP_EXPIRES)


def serve_top_examples_npy(q: Query):
    return _npy(_filter_examples(q)[3])


def serve_top_examples_png(q: Query):
    """The patches side by side, best first, 8-bit over their common range."""
    patches = _filter_examples(q)[3]
    strip = np.concatenate(list(patches), axis=1)[None, None]  # one map of k patches
    return _png(codec.arrays_to_pngs(codec.quantise(strip).mosaics)[0])


def _feature_vis(q: Query):
    """(blobs, the requested channel's item) of a feature visualisation at the requested step."""
    layer = _step_layer(q, FEATURE_VIS, list(q.run().header.feature_vis),
                        f"run {web.shown(q.run_name)!r} has no feature visualisations (CNNViz(feature_vis=N) "
                        f"makes them)")
    blobs, header = lookups.indexed(q.source(), FEATURE_VIS, q.mode(), q.step(), layer)
    channel = web.int_param(q.request, "channel", header["channels"])
    return blobs, maps.channel_position(header, channel)


def serve_feature_vis(q: Query):
    blobs, item = _feature_vis(q)
    return _png(lookups.png_of(q.source(), blobs, item))


def serve_feature_vis_npy(q: Query):
    blobs, item = _feature_vis(q)
    return _npy(lookups.maps_of(q.source(), FEATURE_VIS, blobs, item))


# -- series over steps ------------------------------------------------------------------------
def serve_layer_summary(q: Query):
    """Every conv layer's health over the steps: one read of all their statistics; a damaged
    layer's row says why, the others are shown."""
    run, mode = q.run(), q.mode()
    summaries = lookups.layer_summaries(q.source(), mode)
    return _json({"steps": run.steps[mode], "layers": [
        {"layer": path, "filters": run.header.filters(path), "logged": path in run.header.layers,
         **({"error": str(found)} if isinstance(found, FormatError) else found)}
        for path, found in summaries.items()]})


def _filter_stats(q: Query):
    layer = _conv_layer(q)
    channel = q.index("channel")
    steps, matrix = lookups.filter_stats(q.source(), q.mode(), layer, channel)
    return layer, channel, steps, matrix


def serve_filter_stats(q: Query):
    layer, channel, steps, matrix = _filter_stats(q)
    return _json({"layer": layer, "channel": channel, "steps": steps, "names": list(STAT_NAMES),
                  "stats": dict(zip(STAT_NAMES, matrix))})


def serve_filter_stats_npy(q: Query):
    return _npy(_filter_stats(q)[3], expires=0)


def _drift(q: Query):
    layer = _conv_layer(q)
    stat = web.choice(q.request, "stat", STAT_NAMES)
    steps, matrix = lookups.filter_drift(q.source(), q.mode(), layer, stat)
    return {"layer": layer, "stat": stat, "steps": steps, "filters": matrix.shape[0], "values": matrix}


def serve_filter_drift(q: Query):
    return _json(_drift(q))


def serve_filter_drift_npy(q: Query):
    return _npy(_drift(q)["values"], expires=0)


def serve_faithfulness(q: Query):
    steps, values = lookups.faithfulness(q.source(), q.mode())
    return _json({"steps": steps, "values": values})


def serve_metrics(q: Query):
    """A method's trust figures (default Grad-CAM's) over the steps that scored it."""
    method = q.method()
    steps, found = lookups.metrics(q.source(), q.mode(), method)
    return _json({"method": method, "steps": steps, "series": found})


def serve_metrics_npy(q: Query):
    name = web.choice(q.request, "name", METRIC_NAMES)
    return _npy(lookups.metrics(q.source(), q.mode(), q.method())[1][name], expires=0)


ROUTES = {
    "/runs": serve_runs,
    "/event": serve_event,
    "/probe": serve_probe,
    "/probes.npy": serve_probes_npy,
    "/gradcam": serve_gradcam,
    "/gradcam.npy": serve_gradcam_npy,
    "/mask": serve_mask,
    "/mask.npy": serve_mask_npy,
    "/activations": serve_activations,
    "/activations.npy": serve_activations_npy,
    "/filters": serve_filters,
    "/filters.npy": serve_filters_npy,
    "/stats": serve_stats,
    "/stats.npy": serve_stats_npy,
    "/filter_drift": serve_filter_drift,
    "/filter_drift.npy": serve_filter_drift_npy,
    "/faithfulness": serve_faithfulness,
    "/metrics": serve_metrics,
    "/metrics.npy": serve_metrics_npy,
    "/object": serve_object,
    "/top_examples": serve_top_examples,
    "/top_examples.npy": serve_top_examples_npy,
    "/top_examples.png": serve_top_examples_png,
    "/feature_vis": serve_feature_vis,
    "/feature_vis.npy": serve_feature_vis_npy,
    "/layer_summary": serve_layer_summary,
    "/filter_stats": serve_filter_stats,
    "/filter_stats.npy": serve_filter_stats_npy,
}
