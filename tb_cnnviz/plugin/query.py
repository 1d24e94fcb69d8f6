"""A request's query parameters, each read and checked against the data it names when a route
first asks for it: a malformed one answers 400, one that is not in the data 404 (`web`)."""

from tensorboard import plugin_util

from tb_cnnviz.reading.lookups import NotFound
from tb_cnnviz.plugin import web
from tb_cnnviz.plugin.store import RunInfo, RunSource, Store
from tb_cnnviz.storage import maps, metadata
from tb_cnnviz.storage.layer_names import UnknownLayer, resolve_layer

# Values of `method`; "gradcam++" is the documented alias of "gradcam_pp" (URL-encoded: a "+"
# in a query string reads as a space).
METHODS = {**{method: method for method in metadata.METHODS}, "gradcam++": metadata.GRADCAM_PP}


class Query:
    def __init__(self, store: Store, request):
        self.store, self.request = store, request
        self.ctx = plugin_util.context(request.environ)
        self.experiment = plugin_util.experiment_id(request.environ)
        self._run = self._source = None

    @property
    def run_name(self) -> str:
        return web.param(self.request, "run")

    def run(self) -> RunInfo:
        if self._run is None:
            self._run = self.store.run(self.ctx, self.experiment, self.run_name)
        return self._run

    def source(self) -> RunSource:
        """The requested run as a `reading.lookups.Source`."""
        if self._source is None:
            self._source = RunSource(self.store, self.ctx, self.experiment, self.run_name, self.run())
        return self._source

    def mode(self) -> str:
        return web.choice(self.request, "mode", metadata.MODES, default="train")

    def step(self) -> int:
        return web.int_param(self.request, "step", self.run().steps[self.mode()])

    def sample(self, required: bool = True) -> int | None:
        """The requested probe, one of the run header's (the probe images)."""
        return web.int_param(self.request, "sample", range(self.run().samples), required=required)

    def index(self, name: str, required: bool = True) -> int | None:
        """A non-negative integer parameter (`sample` at a step, `channel` of a filter, `class`),
        which the lookup that reads it checks against the data (404 naming what is there)."""
        return web.int_param(self.request, name, None, required=required)

    def layer(self, paths, extra=None) -> str:
        """The requested layer, one of `paths` by path or unambiguous short name, or a name
        `extra(name)` says the data holds too (a layer the run header no longer names)."""
        name = web.param(self.request, "layer")
        try:
            return resolve_layer(name, paths)
        except UnknownLayer as unknown:
            if not unknown.ambiguous and extra is not None and extra(name):
                return name
            raise NotFound(f"layer {web.shown(name)!r} is not logged", paths) from None

    def channel(self, header: dict) -> int | None:
        """Where the requested channel, one of those `header` lists, sits among an item's maps
        (None: none requested)."""
        channel = web.int_param(self.request, "channel", header["channels"], required=False)
        return None if channel is None else maps.channel_position(header, channel)

    def method(self) -> str:
        """The requested `method` (default Grad-CAM), one of `metadata.METHODS`."""
        return METHODS[web.choice(self.request, "method", list(METHODS), default="gradcam")]
