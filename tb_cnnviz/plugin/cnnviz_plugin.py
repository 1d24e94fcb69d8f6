"""The cnnviz TensorBoard plugin: the dashboard's files (frontend/) and an app per data route
(`routes`), over TensorBoard's data provider (`store`)."""

import importlib.resources
import pathlib

from tensorboard import context as tb_context
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_cnnviz.plugin import web
from tb_cnnviz.plugin.query import Query
from tb_cnnviz.plugin.routes import ROUTES
from tb_cnnviz.plugin.store import Store
from tb_cnnviz.storage import metadata

STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}


def _static_root():
    """The dashboard files: package data when installed, ../frontend in a source checkout."""
    try:
        return importlib.resources.files("tb_cnnviz.frontend")
    except ModuleNotFoundError:
        return pathlib.Path(__file__).resolve().parents[2] / "frontend"


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
            return metadata.PLUGIN_NAME in self._provider.list_plugins(tb_context.RequestContext(), experiment_id="")
        except Exception:  # noqa: BLE001
            return False

    def get_plugin_apps(self):
        apps = {path: web.wsgi_app(lambda request, route=route: route(Query(self._store, request)))
                for path, route in ROUTES.items()}
        for entry in self._static.iterdir():
            suffix = entry.name[entry.name.rfind("."):]
            if suffix in STATIC_TYPES:
                apps["/" + entry.name] = self._static_app(entry.name, STATIC_TYPES[suffix])
        return apps

    def _static_app(self, name, content_type):
        @wrappers.Request.application
        def app(request):
            return http_util.Respond(request, (self._static / name).read_bytes(), content_type)

        return app
