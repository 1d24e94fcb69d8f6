"""The plugin's data routes, served under /data/plugin/cnnviz/ (README, HTTP API).

Each route is a function of a `Query` (the request's parameters, checked against the data
they name) that returns a `web.Answer`; `ROUTES` maps paths to them.
"""

import numpy as np
from tensorboard import plugin_util

from tb_cnnviz import codec, examples, format, metadata, web
from tb_cnnviz.metadata import (ACTIVATIONS, CLASS_MAPS, FAITHFULNESS, FEATURE_VIS, FILTERS, GRADCAM, GRADCAM_PP, MASKS,
                                METRICS, PREDICTIONS, REFERENCE, RUN_HEADER, STATS, TOP_EXAMPLES)
from tb_cnnviz.store import NotFound, RunInfo, Store

# A logged step's data only changes if training is resumed from an older checkpoint into the
# same logdir, so per-step answers are cached briefly rather than for a day.
STEP_EXPIRES = 300
# Values of `method`; "gradcam++" is the documented alias of "gradcam_pp" (URL-encoded: a "+"
# in a query string reads as a space).
METHODS = {"gradcam": GRADCAM, "gradcam_pp": GRADCAM_PP, "gradcam++": GRADCAM_PP}


class Query:
    """A request's parameters, each read and checked against the data when first asked for."""

    def __init__(self, store: Store, request):
        self.store, self.request = store, request
        self.ctx = plugin_util.context(request.environ)
        self.experiment = plugin_util.experiment_id(request.environ)
        self._run = None

    @property
    def run_name(self) -> str:
        return web.param(self.request, "run")

    def run(self) -> RunInfo:
        if self._run is None:
            self._run = self.store.run(self.ctx, self.experiment, self.run_name)
        return self._run

    def mode(self) -> str:
        return web.choice(self.request, "mode", metadata.MODES, default="train")

    def step(self) -> int:
        run = self.run()
        return web.int_param(self.request, "step", run.steps[self.mode()])

    def sample(self, required: bool = True) -> int | None:
        return web.int_param(self.request, "sample", range(self.run().samples), required=required)

    def layer(self, paths) -> str:
        name = web.param(self.request, "layer")
        try:
            return format.resolve_layer(name, paths)
        except format.UnknownLayer:
            raise NotFound(f"layer {web.shown(name)!r} is not logged", paths) from None

    def channel(self, header: dict) -> int | None:
        """Where the requested channel sits among an item's maps (None: none requested)."""
        channel = web.int_param(self.request, "channel", header["channels"], required=False)
        return None if channel is None else format.channel_position(header, channel)

    def summary(self, kind: str, layers=None) -> tuple:
        """(blobs, decoded header) of a blob summary at the requested step; `layers(run)`
        gives the layer paths the kind may be asked for."""
        run, mode, step = self.run(), self.mode(), self.step()
        tag = metadata.tag(kind, mode, self.layer(layers(run)) if layers else None)
        blobs = self.store.step_blobs(self.ctx, self.experiment, self.run_name, [tag], step)[tag]
        return blobs, self.store.header(self.ctx, blobs)

    def series(self, kind: str, layer: str | None = None) -> dict:
        """{step: array} of a tensor summary of the requested mode ({} if it has none)."""
        try:
            return self.store.tensors(self.ctx, self.experiment, self.run_name, metadata.tag(kind, self.mode(), layer))
        except NotFound:  # e.g. a mode with no events: an empty series
            return {}


def _json(body, expires=0):
    return web.Answer(body, web.JSON, expires)


def _npy(array, expires=STEP_EXPIRES):
    return web.Answer(web.npy(array), web.NPY, expires)


def _png(png):
    return web.Answer(png, web.PNG, STEP_EXPIRES)


def _activation_layers(run):
    return run.header.layers


def _filter_layers(run):
    return list(run.header.filter_channels)


def _conv_layers(run):
    return list(run.header.conv_layers)


def _example_layers(run):
    return list((run.header.top_examples or {}).get("layers", []))


def _visualised_layers(run):
    return list(run.header.feature_vis)


# -- the run ----------------------------------------------------------------------------------
def serve_runs(q: Query):
    """Every run with its header (without the probes' objects, served by `object`)."""
    runs = []
    for name, info in q.store.runs(q.ctx, q.experiment).items():
        if isinstance(info, str):
            runs.append({"run": name, "error": info})
            continue
        samples, image_shape = format.probe_shape(info.images)
        header = info.header.stored()
        header.pop("objects")  # served per probe by `object`
        runs.append({"run": name, "samples": samples, "image_shape": image_shape, **header,
                     "metric_names": list(format.METRIC_NAMES), "steps": info.steps})
    return _json({"runs": runs, "dead_at": format.DEAD_AT})


def serve_probe(q: Query):
    run = q.run()
    return _png(q.store.png(q.ctx, run.probes, q.sample()))


def serve_probes_npy(q: Query):
    run = q.run()
    return _npy(q.store.maps(q.ctx, RUN_HEADER, run.probes, q.sample(required=False)))


# -- one step ---------------------------------------------------------------------------------
def serve_event(q: Query):
    """A step's overview: predictions and the header of every summary of the step."""
    run, mode, step = q.run(), q.mode(), q.step()
    predictions, index = format.unpack_predictions(q.summary(PREDICTIONS)[1])
    summaries = _read_step_index(q, run, mode, step) if index is None else format.checked_step_index(index, run.header, step)
    return _json({"run": q.run_name, "mode": mode, "step": step, "predictions": predictions, **summaries}, STEP_EXPIRES)


def _read_step_index(q, run, mode, step):
    """The index of a step written without one, from every summary of the step."""
    blobs = q.store.step_blobs(q.ctx, q.experiment, q.run_name, format.step_tags(run.header, mode), step)
    try:
        faithfulness = q.store.tensors(q.ctx, q.experiment, q.run_name, metadata.tag(FAITHFULNESS, mode))
    except metadata.FormatError:
        faithfulness = {}  # the faithfulness route says why
    value = float(faithfulness[step]) if step in faithfulness else None
    return format.read_step_index(run.header, mode, lambda tag: q.store.header(q.ctx, blobs[tag]), value)


def _method(q) -> str:
    """The summary kind of the requested `method` (default Grad-CAM)."""
    return METHODS[web.choice(q.request, "method", list(METHODS), default="gradcam")]


def _gradcam(q):
    kind = _method(q)
    return kind, q.summary(kind)[0]


def _class_map(q):
    """(blobs, header, sample, position) of the requested class's map, or None if no class
    is asked for: the target's map is the method's own summary."""
    if web.param(q.request, "class", required=False) is None:
        return None
    kind = _method(q)
    sample, _ = q.sample(), q.step()  # their own 404s first
    try:
        blobs, header = q.summary(CLASS_MAPS)
    except NotFound:
        raise NotFound(f"run {web.shown(q.run_name)!r} stores no maps of other classes at this step (written "
                       f"before tb_cnnviz stored them): ask without class=", []) from None
    class_index = web.int_param(q.request, "class", header["classes"][sample])  # 404 lists the stored ones
    return blobs, header, sample, format.class_map_position(header, sample, class_index, kind)


def serve_gradcam(q: Query):
    found = _class_map(q)
    if found is not None:
        blobs, header, sample, position = found
        return _png(format.map_png(header, q.store.png(q.ctx, blobs, sample), position))
    _, blobs = _gradcam(q)
    return _png(q.store.png(q.ctx, blobs, q.sample()))


def serve_gradcam_npy(q: Query):
    found = _class_map(q)
    if found is not None:
        blobs, _, sample, position = found
        return _npy(format.channel(CLASS_MAPS, q.store.maps(q.ctx, CLASS_MAPS, blobs, sample), position))
    kind, blobs = _gradcam(q)
    return _npy(q.store.maps(q.ctx, kind, blobs, q.sample(required=False)))


def serve_object(q: Query):
    """Probe `sample`'s object mask as a grey PNG: 255 on the object, 0 elsewhere."""
    run, sample = q.run(), q.sample()
    count, (height, width, _) = format.probe_shape(run.images)
    masks = format.object_masks(run.header, (count, height, width))
    if masks is None:
        raise NotFound(f"run {web.shown(q.run_name)!r} has no object masks or boxes for its probes (CNNViz "
                       f"masks= or boxes=)", [])
    return _png(codec.array_to_png(masks[sample, :, :, None].astype(np.uint8) * 255))


def _masks(q):
    if q.run().header.head != metadata.SEGMENTATION:
        raise NotFound(f"run {web.shown(q.run_name)!r} has no masks: its head is {q.run().header.head!r}", [])
    return q.summary(MASKS)[0]


def serve_mask(q: Query):
    return _png(q.store.png(q.ctx, _masks(q), q.sample()))


def serve_mask_npy(q: Query):
    return _npy(q.store.maps(q.ctx, MASKS, _masks(q), q.sample(required=False)))


def _map_png(q, blobs, header, item):
    """The stored PNG mosaic of one item, or the requested channel's map alone."""
    position = q.channel(header)
    png = q.store.png(q.ctx, blobs, item)
    return _png(png if position is None else format.map_png(header, png, position))


def _map_npy(q, kind, blobs, header, item):
    """A map kind's array (or one item's part), or the requested channel's maps alone."""
    position = q.channel(header)
    maps = q.store.maps(q.ctx, kind, blobs, item)
    return _npy(maps if position is None else format.channel(kind, maps, position))


def serve_activations(q: Query):
    blobs, header = q.summary(ACTIVATIONS, _activation_layers)
    return _map_png(q, blobs, header, q.sample())


def serve_activations_npy(q: Query):
    blobs, header = q.summary(ACTIVATIONS, _activation_layers)
    return _map_npy(q, ACTIVATIONS, blobs, header, q.sample(required=False))


def serve_filters(q: Query):
    blobs, header = q.summary(FILTERS, _filter_layers)
    return _map_png(q, blobs, header, format.FILTERS_ITEM)


def serve_filters_npy(q: Query):
    blobs, header = q.summary(FILTERS, _filter_layers)
    return _map_npy(q, FILTERS, blobs, header, format.FILTERS_ITEM)


def _stats(q):
    run, step = q.run(), q.step()
    layer = q.layer(_conv_layers(run))
    series = q.store.tensors(q.ctx, q.experiment, q.run_name, metadata.tag(STATS, q.mode(), layer))
    if step not in series:
        raise NotFound(f"no statistics for {layer!r} at step {step}", sorted(series))
    return series[step]


def serve_stats(q: Query):
    return _json({name: values.tolist() for name, values in format.stats_by_name(_stats(q)).items()}, STEP_EXPIRES)


def serve_stats_npy(q: Query):
    return _npy(_stats(q))


def _filter(q, run, layer) -> int:
    """The requested `channel`: one of the layer's filters."""
    return web.int_param(q.request, "channel", range(run.header.filters(layer)))


def _top_examples(q):
    """(layer, channel, its top examples, their patches (k, h, w, C), boxes) at the requested step."""
    run = q.run()
    if not _example_layers(run):
        raise NotFound(f"run {web.shown(q.run_name)!r} has no top examples (written before tb_cnnviz logged them)", [])
    layer = q.layer(_example_layers(run))
    blobs, header = _indexed(q, TOP_EXAMPLES, layer)
    channel = _filter(q, run, layer)
    if not format.digest_matches(run.header, header):
        raise NotFound(f"the top examples of {layer!r} at step {q.step()} index other images than this run's (it was "
                       f"started again with other probes or reference images)", _steps_holding(q, layer, channel))
    top = format.unpack_top_examples(header, q.store.blob(q.ctx, blobs[1]))
    if not top.holds(channel):  # a wide layer's filters take turns
        raise NotFound(f"filter {channel} of {layer!r} has no top examples at step {q.step()}: this layer's filters "
                       f"take turns", _steps_holding(q, layer, channel))
    kind, stored = (RUN_HEADER, run.probes) if top.reference == format.PROBES_REFERENCE else (REFERENCE, run.reference)
    wanted = set(top.images[:, top.column(channel)].tolist())
    if stored is None or max(wanted) >= len(stored) - 1 or len(stored) - 1 != q.store.header(q.ctx, stored)["shape"][0]:
        raise format.FormatError(f"damaged cnnviz top examples of {layer!r} at this step: they name images or "
                                 f"filters that are not stored")
    images = {index: q.store.maps(q.ctx, kind, stored, index) for index in wanted}
    patches, boxes = examples.patches(images, format.probe_shape(q.store.header(q.ctx, stored))[1][:2], top, channel,
                                      run.header.receptive_fields.get(layer))
    return layer, channel, top, patches, boxes


def _indexed(q, kind, layer) -> tuple:
    """(blobs, header) of a summary the requested step indexes: a kind logged at some steps only
    may be left at a step by an earlier run in the logdir that a restart did not overwrite."""
    blobs, header = q.summary(kind, lambda _: [layer])
    index = format.unpack_predictions(q.summary(PREDICTIONS)[1])[1]
    if not format.indexed_by_step(index, kind, layer, header):
        raise NotFound(f"the {kind} of {layer!r} at step {q.step()} were left by an earlier run in this logdir", [])
    return blobs, header


def _steps_holding(q, layer, channel) -> list:
    """The steps of the requested mode whose top examples of `layer` hold filter `channel` of
    the run's current reference images."""
    steps = q.run().steps[q.mode()]
    headers = q.store.headers(q.ctx, q.experiment, q.run_name, metadata.tag(TOP_EXAMPLES, q.mode(), layer), steps)
    held = []
    for step, header in headers.items():
        try:
            first, filters = int(header.get("first", 0)), int(header["filters"])
        except (KeyError, TypeError, ValueError):
            continue  # a damaged step: its own request says so
        if first <= channel < first + filters and format.digest_matches(q.run().header, header):
            held.append(step)
    return held


def serve_top_examples(q: Query):
    layer, channel, top, patches, boxes = _top_examples(q)
    return _json({"layer": layer, "channel": channel, **top.of(channel), "boxes": [list(box) for box in boxes],
                  "size": list(patches.shape[1:3]), "reference": top.reference}, STEP_EXPIRES)


def serve_top_examples_npy(q: Query):
    return _npy(_top_examples(q)[3])


def serve_top_examples_png(q: Query):
    """The patches side by side, best first, 8-bit over their common range."""
    patches = _top_examples(q)[3]
    strip = np.concatenate(list(patches), axis=1)[None, None]  # one map of k patches
    return _png(codec.arrays_to_pngs(codec.quantise(strip).mosaics)[0])


def _feature_vis(q):
    """(blobs, the requested channel's item) of a feature visualisation at the requested step."""
    if not _visualised_layers(q.run()):
        raise NotFound(f"run {web.shown(q.run_name)!r} has no feature visualisations (CNNViz(feature_vis=N) makes "
                       f"them)", [])
    blobs, header = _indexed(q, FEATURE_VIS, q.layer(_visualised_layers(q.run())))
    channel = web.int_param(q.request, "channel", header["channels"])
    return blobs, format.channel_position(header, channel)


def serve_feature_vis(q: Query):
    blobs, item = _feature_vis(q)
    return _png(q.store.png(q.ctx, blobs, item))


def serve_feature_vis_npy(q: Query):
    blobs, item = _feature_vis(q)
    return _npy(q.store.maps(q.ctx, FEATURE_VIS, blobs, item))


# -- series over steps ------------------------------------------------------------------------
def serve_layer_summary(q: Query):
    """Every conv layer's health over the steps: one read of all their statistics."""
    run, mode = q.run(), q.mode()
    layers = _conv_layers(run)
    series = {}
    if run.steps[mode]:
        series = q.store.tensor_series(q.ctx, q.experiment, q.run_name, [metadata.tag(STATS, mode, p) for p in layers])
    steps = run.steps[mode]
    def health(path):
        try:
            return format.layer_summary(steps, series.get(metadata.tag(STATS, mode, path), {}))
        except metadata.FormatError as error:  # one damaged layer: said in its row, the others shown
            return {"error": str(error)}

    return _json({"steps": steps, "layers": [
        {"layer": path, "filters": run.header.filters(path), "logged": path in run.header.layers, **health(path)}
        for path in layers]})


def _filter_stats(q):
    run, mode = q.run(), q.mode()
    layer = q.layer(_conv_layers(run))
    channel = _filter(q, run, layer)
    steps, matrix = format.filter_stats(run.header, layer, run.steps[mode], q.series(STATS, layer), channel)
    return layer, channel, steps, matrix


def serve_filter_stats(q: Query):
    layer, channel, steps, matrix = _filter_stats(q)
    return _json({"layer": layer, "channel": channel, "steps": steps, "names": list(format.STAT_NAMES),
                  "stats": dict(zip(format.STAT_NAMES, matrix))})


def serve_filter_stats_npy(q: Query):
    return _npy(_filter_stats(q)[3], expires=0)


def _drift(q):
    run, mode = q.run(), q.mode()
    layer = q.layer(_conv_layers(run))
    stat = web.choice(q.request, "stat", format.STAT_NAMES)
    steps, matrix = format.filter_drift(run.header, layer, run.steps[mode], q.series(STATS, layer), stat)
    return {"layer": layer, "stat": stat, "steps": steps, "filters": matrix.shape[0], "values": matrix}


def serve_filter_drift(q: Query):
    return _json(_drift(q))


def serve_filter_drift_npy(q: Query):
    return _npy(_drift(q)["values"], expires=0)


def serve_faithfulness(q: Query):
    run, mode = q.run(), q.mode()
    steps, values = format.scalar_series(run.steps[mode], q.series(FAITHFULNESS))
    return _json({"steps": steps, "values": values})


def _metrics(q):
    run, mode = q.run(), q.mode()
    return format.metric_series(run.steps[mode], q.series(METRICS))


def serve_metrics(q: Query):
    steps, series = _metrics(q)
    return _json({"steps": steps, "series": series})


def serve_metrics_npy(q: Query):
    name = web.choice(q.request, "name", format.METRIC_NAMES)
    return _npy(_metrics(q)[1][name], expires=0)


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
