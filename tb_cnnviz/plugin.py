"""The cnnviz TensorBoard plugin: HTTP routes over the data provider.

Every route validates its query parameters and answers bad input with 400 (malformed) or
404 (not in the data) and a JSON body naming the problem and the valid choices.
"""

import importlib.resources
import io
import json
import logging
import math
import pathlib
import re

import numpy as np
from tensorboard import context as tb_context, errors as tb_errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_cnnviz import codec, metadata
from tb_cnnviz.store import NotFound, Store

logger = logging.getLogger(__name__)

# A logged step's data only changes if training is resumed from an older checkpoint into the
# same logdir, so per-step answers are cached briefly rather than for a day.
STEP_EXPIRES = 300
MAX_PARAM = 1000
METHODS = {"gradcam": metadata.GRADCAM, "gradcam++": metadata.GRADCAM_PP, "gradcam_pp": metadata.GRADCAM_PP}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}
_INT = re.compile(r"[0-9]{1,15}")


def _static_root():
    """The dashboard files: package data when installed, ../frontend in a source checkout."""
    try:
        return importlib.resources.files("tb_cnnviz.frontend")
    except ModuleNotFoundError:
        return pathlib.Path(__file__).resolve().parent.parent / "frontend"


class BadRequest(ValueError):
    def __init__(self, message, valid=()):
        super().__init__(message)
        self.message, self.valid = message, list(valid)


def _shown(value):
    return value if len(value) <= 80 else value[:80] + "…"


def _param(request, name, default=None, required=True):
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"give query parameter {name!r} once, not {len(values)} times")
    if not values:
        if required and default is None:
            raise BadRequest(f"missing query parameter {name!r}")
        return default
    value = values[0]
    if not value:
        raise BadRequest(f"query parameter {name!r} is empty")
    if len(value) > MAX_PARAM:
        raise BadRequest(f"query parameter {name!r} is longer than {MAX_PARAM} characters")
    return value


def _int_param(request, name, valid, required=True):
    """An index that must be one of `valid` (404 when well-formed but not there)."""
    value = _param(request, name, required=required)
    if value is None:
        return None
    if not _INT.fullmatch(value):
        raise BadRequest(f"{name} must be a non-negative integer, got {_shown(value)!r}")
    number = int(value)
    if number not in valid:
        raise NotFound(f"{name} {number} is not logged", valid)
    return number


def _choice(request, name, valid, default=None):
    value = _param(request, name, default)
    if value not in valid:
        raise BadRequest(f"{name} must be one of {list(valid)}, got {_shown(value)!r}", valid)
    return value


def _json_safe(value):
    """Lists with None for NaN/inf: browsers' JSON.parse rejects NaN."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _json_text(value):
    """JSON with <, > and & escaped, so no response ever carries markup it was given."""
    text = json.dumps(_json_safe(value), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, np.float32), allow_pickle=False)
    return buffer.getvalue()


def _layer_groups(info):
    """{ACTIVATIONS: layer paths, FILTERS: layer paths} that the run header says a step logs."""
    return {metadata.ACTIVATIONS: list(info["layers"]), metadata.FILTERS: list(info["filter_channels"])}


def _checked_step_index(index, info, step):
    """The step index of a predictions header, each summary's header checked: a damaged one,
    or a layer of the run header the step lacks, becomes {"error": why}, so the rest of the
    step stays usable."""
    def checked(header):
        try:
            return codec.check_header(header)
        except metadata.FormatError as error:
            return {"error": str(error)}

    groups = _layer_groups(info)
    if not (isinstance(index, dict) and all(isinstance(index.get(g), dict) for g in groups)
            and isinstance(index.get(metadata.FAITHFULNESS), (int, float, type(None)))):
        raise metadata.FormatError("damaged cnnviz step index in the predictions summary")
    summaries = {
        metadata.GRADCAM: checked(index.get(metadata.GRADCAM)),
        metadata.GRADCAM_PP: checked(index.get(metadata.GRADCAM_PP)),
        **{group: {str(path): checked(h) for path, h in index[group].items()} for group in groups},
        metadata.FAITHFULNESS: index.get(metadata.FAITHFULNESS),
    }
    for group, paths in groups.items():
        for path in paths:  # e.g. a resumed run that logs other layers than this step did
            summaries[group].setdefault(path, {"error": f"no {group} of {path!r} at step {step}"})
    return summaries


def _route(handler):
    """Runs a handler returning (body, content type, expires); errors become JSON answers."""

    @wrappers.Request.application
    def app(self, request):
        try:
            body, content_type, expires = handler(self, request)
            if content_type == "application/json":
                body = _json_text(body)
            return http_util.Respond(request, body, content_type, expires=expires)
        except BadRequest as error:
            return _error(request, 400, error.message, error.valid)
        except (NotFound, KeyError, tb_errors.NotFoundError) as error:
            return _error(request, 404, getattr(error, "message", str(error)), getattr(error, "valid", []))
        except tb_errors.InvalidArgumentError as error:  # e.g. an experiment id the Rust data server rejects
            return _error(request, 400, str(error))
        except metadata.FormatError as error:
            return _error(request, 422, str(error))
        except Exception:  # noqa: BLE001 - no stack trace reaches the browser
            logger.exception("cnnviz: %s failed", request.path)
            return _error(request, 500, "internal error in the cnnviz plugin; see TensorBoard's log")

    return app


def _error(request, code, message, valid=()):
    body = {"error": message}
    if valid:
        body["valid"] = [v if not isinstance(v, str) else _shown(v) for v in list(valid)[:1000]]
    return http_util.Respond(request, _json_text(body), "application/json", code=code)


class CNNVizPlugin(base_plugin.TBPlugin):
    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context):
        self._provider = context.data_provider
        self._store = Store(context.data_provider)
        self._static = _static_root()

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="CNN Viz")

    def is_active(self):
        """Only consulted when the provider's plugin listing did not already say; cheap."""
        try:
            return metadata.PLUGIN_NAME in self._provider.list_plugins(
                tb_context.RequestContext(), experiment_id="")
        except Exception:  # noqa: BLE001
            return False

    def get_plugin_apps(self):
        routes = {
            "/runs": self._serve_runs,
            "/event": self._serve_event,
            "/probe": self._serve_probe,
            "/probes.npy": self._serve_probes_npy,
            "/gradcam": self._serve_gradcam,
            "/gradcam.npy": self._serve_gradcam_npy,
            "/activations": self._serve_activations,
            "/activations.npy": self._serve_activations_npy,
            "/filters": self._serve_filters,
            "/filters.npy": self._serve_filters_npy,
            "/stats": self._serve_stats,
            "/stats.npy": self._serve_stats_npy,
            "/filter_drift": self._serve_filter_drift,
            "/filter_drift.npy": self._serve_filter_drift_npy,
            "/faithfulness": self._serve_faithfulness,
        }
        for entry in self._static.iterdir():
            suffix = entry.name[entry.name.rfind("."):]
            if suffix in STATIC_TYPES:
                routes["/" + entry.name] = self._static_app(entry.name, STATIC_TYPES[suffix])
        return routes

    def _static_app(self, name, content_type):
        @wrappers.Request.application
        def app(request):
            body = (self._static / name).read_bytes()
            return http_util.Respond(request, body, content_type)

        return app

    # -- parameters shared by routes ----------------------------------------------------------
    def _run(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        run = _param(request, "run")
        return ctx, experiment, run, self._store.run(ctx, experiment, run)

    def _step(self, request):
        ctx, experiment, run, info = self._run(request)
        mode = _choice(request, "mode", metadata.MODES, default="train")
        step = _int_param(request, "step", info["steps"][mode])
        return ctx, experiment, run, info, mode, step

    @staticmethod
    def _sample(request, info, required=True):
        return _int_param(request, "sample", range(info["shape"][0]), required=required)

    @staticmethod
    def _layer(request, info, paths):
        name = _param(request, "layer")
        try:
            return metadata.resolve_layer(name, paths)
        except KeyError:
            raise NotFound(f"layer {_shown(name)!r} is not logged", paths) from None

    def _maps_at(self, request, kind, layer=None):
        """(ctx, references, header) of one blob summary at the requested step."""
        ctx, experiment, run, info, mode, step = self._step(request)
        tag = metadata.tag(kind, mode, layer(info) if layer else None)
        references = self._store.step_blobs(ctx, experiment, run, [tag], step)[tag]
        return ctx, info, references, self._store.header(ctx, references)

    # -- routes -------------------------------------------------------------------------------
    @_route
    def _serve_runs(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        runs = []
        for name, info in self._store.runs(ctx, experiment).items():
            if "error" in info:
                runs.append({"run": name, "error": info["error"]})
                continue
            runs.append({
                "run": name,
                "model": info.get("model"),
                "samples": info["shape"][0],
                "image_shape": info["shape"][2:],
                "labels": info.get("labels"),
                "class_names": info.get("class_names"),
                "num_classes": info.get("num_classes"),
                "layers": info["layers"],
                "conv_layers": info["conv_layers"],
                "channels": info["channels"],
                "filter_channels": info["filter_channels"],
                "gradcam_layer": info["gradcam_layer"],
                "stat_names": info["stat_names"],
                "faithfulness_fraction": info.get("faithfulness_fraction"),
                "steps": info["steps"],
            })
        return {"runs": runs}, "application/json", 0

    @_route
    def _serve_event(self, request):
        """A step's overview: predictions and the header of every summary of the step."""
        ctx, experiment, run, info, mode, step = self._step(request)
        tag = metadata.tag(metadata.PREDICTIONS, mode)
        predictions = dict(self._store.header(ctx, self._store.step_blobs(ctx, experiment, run, [tag], step)[tag]))
        index = predictions.pop(metadata.STEP_INDEX, None)
        summaries = (self._read_step_summaries(ctx, experiment, run, info, mode, step) if index is None
                     else _checked_step_index(index, info, step))
        return {"run": run, "mode": mode, "step": step, "predictions": predictions, **summaries}, \
            "application/json", STEP_EXPIRES

    def _read_step_summaries(self, ctx, experiment, run, info, mode, step):
        """The step index of a run written without one: read from every summary of the step."""
        layers = {metadata.tag(group, mode, path): (group, path)
                  for group, paths in _layer_groups(info).items() for path in paths}
        tags = [metadata.tag(metadata.GRADCAM, mode), metadata.tag(metadata.GRADCAM_PP, mode), *layers]
        blobs = self._store.step_blobs(ctx, experiment, run, tags, step)
        headers = {tag: self._header_or_error(ctx, refs) for tag, refs in blobs.items()}
        summaries = {metadata.GRADCAM: headers[tags[0]], metadata.GRADCAM_PP: headers[tags[1]],
                     metadata.ACTIVATIONS: {}, metadata.FILTERS: {}}
        for tag, (group, path) in layers.items():
            summaries[group][path] = headers[tag]
        try:
            faithfulness = self._store.tensors(ctx, experiment, run, metadata.tag(metadata.FAITHFULNESS, mode))
        except metadata.FormatError:
            faithfulness = {}  # the faithfulness route says why
        summaries[metadata.FAITHFULNESS] = float(faithfulness[step]) if step in faithfulness else None
        return summaries

    def _header_or_error(self, ctx, references):
        """A summary's header, or {"error": why} so one damaged layer leaves the rest usable."""
        try:
            return self._store.header(ctx, references)
        except metadata.FormatError as error:
            return {"error": str(error)}

    @_route
    def _serve_probe(self, request):
        ctx, _, _, info = self._run(request)
        sample = self._sample(request, info)
        return self._store.png(ctx, info["probes"], sample), "image/png", STEP_EXPIRES

    @_route
    def _serve_probes_npy(self, request):
        ctx, _, _, info = self._run(request)
        sample = self._sample(request, info, required=False)
        maps = self._store.maps(ctx, info["probes"], sample)
        return _npy(maps[..., 0, :, :, :] if sample is None else maps[0]), "application/octet-stream", STEP_EXPIRES

    def _gradcam_at(self, request):
        kind = METHODS[_choice(request, "method", list(METHODS), default="gradcam")]
        return self._maps_at(request, kind)

    @_route
    def _serve_gradcam(self, request):
        ctx, info, references, _ = self._gradcam_at(request)
        sample = self._sample(request, info)
        return self._store.png(ctx, references, sample), "image/png", STEP_EXPIRES

    @_route
    def _serve_gradcam_npy(self, request):
        ctx, info, references, _ = self._gradcam_at(request)
        sample = self._sample(request, info, required=False)
        maps = self._store.maps(ctx, references, sample)  # (B, 1, H, W, 1) or (1, H, W, 1)
        return _npy(maps[..., 0, :, :, 0] if sample is None else maps[0, :, :, 0]), "application/octet-stream", STEP_EXPIRES

    def _channel(self, request, header):
        channels = header["channels"]
        channel = _int_param(request, "channel", channels, required=False)
        return None if channel is None else channels.index(channel)

    def _activations_at(self, request):
        return self._maps_at(request, metadata.ACTIVATIONS,
                             lambda info: self._layer(request, info, info["layers"]))

    def _item_png(self, ctx, references, header, item, position):
        """The stored PNG mosaic of one item, or one of its maps re-encoded alone."""
        png = self._store.png(ctx, references, item)
        if position is not None:
            png = codec.array_to_png(codec.item_pixels(header, png)[position])
        return png, "image/png", STEP_EXPIRES

    @_route
    def _serve_activations(self, request):
        ctx, info, references, header = self._activations_at(request)
        sample = self._sample(request, info)
        return self._item_png(ctx, references, header, sample, self._channel(request, header))

    @_route
    def _serve_activations_npy(self, request):
        ctx, info, references, header = self._activations_at(request)
        sample = self._sample(request, info, required=False)
        position = self._channel(request, header)
        maps = self._store.maps(ctx, references, sample)[..., 0]  # (B, n, h, w) or (n, h, w)
        if position is not None:
            maps = maps[..., position, :, :]
        return _npy(maps), "application/octet-stream", STEP_EXPIRES

    def _filters_at(self, request):
        return self._maps_at(request, metadata.FILTERS,
                             lambda info: self._layer(request, info, list(info["filter_channels"])))

    @_route
    def _serve_filters(self, request):
        ctx, _, references, header = self._filters_at(request)
        return self._item_png(ctx, references, header, 0, self._channel(request, header))

    @_route
    def _serve_filters_npy(self, request):
        ctx, _, references, header = self._filters_at(request)
        position = self._channel(request, header)
        maps = self._store.maps(ctx, references, 0)  # (n, kh, kw, c)
        return _npy(maps if position is None else maps[position]), "application/octet-stream", STEP_EXPIRES

    def _stats_at(self, request):
        ctx, experiment, run, info, mode, step = self._step(request)
        layer = self._layer(request, info, list(info["conv_layers"]))
        series = self._store.tensors(ctx, experiment, run, metadata.tag(metadata.STATS, mode, layer))
        if step not in series:
            raise NotFound(f"no statistics for {layer!r} at step {step}", sorted(series))
        return series[step]

    @_route
    def _serve_stats(self, request):
        stats = self._stats_at(request)
        return dict(zip(metadata.STAT_NAMES, stats.tolist())), "application/json", STEP_EXPIRES

    @_route
    def _serve_stats_npy(self, request):
        return _npy(self._stats_at(request)), "application/octet-stream", STEP_EXPIRES

    def _drift(self, request):
        ctx, experiment, run, info = self._run(request)
        mode = _choice(request, "mode", metadata.MODES, default="train")
        layer = self._layer(request, info, list(info["conv_layers"]))
        stat = _choice(request, "stat", metadata.STAT_NAMES)
        try:
            series = self._store.tensors(ctx, experiment, run, metadata.tag(metadata.STATS, mode, layer))
        except NotFound:  # e.g. a mode with no events: an empty series, as faithfulness gives
            series = {}
        steps = [s for s in info["steps"][mode] if s in series]  # complete events only
        if not steps:
            return layer, stat, steps, np.empty((info["conv_layers"][layer]["output_shape"][-1], 0), np.float32)
        row = metadata.STAT_NAMES.index(stat)
        return layer, stat, steps, np.stack([series[s][row] for s in steps], axis=1)

    @_route
    def _serve_filter_drift(self, request):
        layer, stat, steps, matrix = self._drift(request)
        body = {"layer": layer, "stat": stat, "steps": steps, "filters": matrix.shape[0], "values": matrix}
        return body, "application/json", 0

    @_route
    def _serve_filter_drift_npy(self, request):
        return _npy(self._drift(request)[3]), "application/octet-stream", 0

    @_route
    def _serve_faithfulness(self, request):
        ctx, experiment, run, info = self._run(request)
        mode = _choice(request, "mode", metadata.MODES, default="train")
        try:
            series = self._store.tensors(ctx, experiment, run, metadata.tag(metadata.FAITHFULNESS, mode))
        except NotFound:
            series = {}
        steps = [s for s in info["steps"][mode] if s in series]  # complete events only
        return {"steps": steps, "values": [float(series[s]) for s in steps]}, "application/json", 0
