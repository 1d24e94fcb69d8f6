"""The plugin's data routes, served under /data/plugin/cnnviz/ (README, HTTP API).

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
                                        SEGMENTATION, FormatError)
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
def _summary(q: Query, kind: str, layers=None) -> tuple:
    """(blobs, header) of a blob summary at the requested step; `layers` lists the layer paths
    the kind may be asked for."""
    source, mode, step = q.source(), q.mode(), q.step()
    return lookups.summary(source, kind, mode, step, q.layer(layers) if layers is not None else None)


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
    kind, sample, step = q.method(), q.sample(), q.step()  # their own 400s and 404s first
    classes = lookups.class_maps(q.source(), q.mode(), step)[1]["classes"][sample]
    class_index = web.int_param(q.request, "class", classes)
    blobs, position = lookups.class_map(q.source(), q.mode(), step, sample, class_index, kind)
    return blobs, sample, position


def serve_gradcam(q: Query):
    found = _class_map(q)
    if found is not None:
        blobs, sample, position = found
        return _png(maps.map_png(q.source().decoded(blobs), lookups.png_of(q.source(), blobs, sample), position))
    blobs, _ = _summary(q, q.method())
    return _png(lookups.png_of(q.source(), blobs, q.sample()))


def serve_gradcam_npy(q: Query):
    found = _class_map(q)
    if found is not None:
        blobs, sample, position = found
        return _npy(maps.channel(CLASS_MAPS, lookups.maps_of(q.source(), CLASS_MAPS, blobs, sample), position))
    kind = q.method()
    blobs, _ = _summary(q, kind)
    return _npy(lookups.maps_of(q.source(), kind, blobs, q.sample(required=False)))


def _masks(q: Query):
    if q.run().header.head != SEGMENTATION:
        raise NotFound(f"run {web.shown(q.run_name)!r} has no masks: its head is {q.run().header.head!r}")
    return _summary(q, MASKS)[0]


def serve_mask(q: Query):
    return _png(lookups.png_of(q.source(), _masks(q), q.sample()))


def serve_mask_npy(q: Query):
    return _npy(lookups.maps_of(q.source(), MASKS, _masks(q), q.sample(required=False)))


def _map_png(q: Query, kind: str, layers: list, item: int):
    """The stored PNG mosaic of one item of a layer's maps, or the requested channel's map alone."""
    blobs, header = _summary(q, kind, layers)
    position = q.channel(header)
    png = lookups.png_of(q.source(), blobs, item)
    return _png(png if position is None else maps.map_png(header, png, position))


def _map_npy(q: Query, kind: str, layers: list, item: int | None):
    """A layer's maps (or one item's part), or the requested channel's maps alone."""
    blobs, header = _summary(q, kind, layers)
    position = q.channel(header)
    found = lookups.maps_of(q.source(), kind, blobs, item)
    return _npy(found if position is None else maps.channel(kind, found, position))


def serve_activations(q: Query):
    return _map_png(q, ACTIVATIONS, q.run().header.layers, q.sample())


def serve_activations_npy(q: Query):
    return _map_npy(q, ACTIVATIONS, q.run().header.layers, q.sample(required=False))


def serve_filters(q: Query):
    return _map_png(q, FILTERS, list(q.run().header.filter_channels), maps.FILTERS_ITEM)


def serve_filters_npy(q: Query):
    return _map_npy(q, FILTERS, list(q.run().header.filter_channels), maps.FILTERS_ITEM)


def _stats(q: Query):
    step = q.step()
    return lookups.stats(q.source(), q.mode(), step, q.layer(list(q.run().header.conv_layers)))


def serve_stats(q: Query):
    return _json({name: values.tolist() for name, values in stats_by_name(_stats(q)).items()}, STEP_EXPIRES)


def serve_stats_npy(q: Query):
    return _npy(_stats(q))


# -- what filters learned ---------------------------------------------------------------------
def _filter_examples(q: Query):
    """(layer, channel, its top examples, their patches (k, h, w, C), boxes) at the requested step."""
    layers = list((q.run().header.top_examples or {}).get("layers", []))
    if not layers:
        raise NotFound(f"run {web.shown(q.run_name)!r} has no top examples (written before tb_cnnviz logged them)")
    layer = q.layer(layers)
    step = q.step()
    channel = q.filter(layer)
    top, patches, boxes = lookups.filter_examples(q.source(), q.mode(), step, layer, channel)
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
    layers = list(q.run().header.feature_vis)
    if not layers:
        raise NotFound(f"run {web.shown(q.run_name)!r} has no feature visualisations (CNNViz(feature_vis=N) makes "
                       f"them)")
    layer = q.layer(layers)
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
    layer = q.layer(list(q.run().header.conv_layers))
    channel = q.filter(layer)
    steps, matrix = lookups.filter_stats(q.source(), q.mode(), layer, channel)
    return layer, channel, steps, matrix


def serve_filter_stats(q: Query):
    layer, channel, steps, matrix = _filter_stats(q)
    return _json({"layer": layer, "channel": channel, "steps": steps, "names": list(STAT_NAMES),
                  "stats": dict(zip(STAT_NAMES, matrix))})


def serve_filter_stats_npy(q: Query):
    return _npy(_filter_stats(q)[3], expires=0)


def _drift(q: Query):
    layer = q.layer(list(q.run().header.conv_layers))
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
    steps, found = lookups.metrics(q.source(), q.mode())
    return _json({"steps": steps, "series": found})


def serve_metrics_npy(q: Query):
    name = web.choice(q.request, "name", METRIC_NAMES)
    return _npy(lookups.metrics(q.source(), q.mode())[1][name], expires=0)


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
