"""HTTP plumbing of the plugin's routes: query parameters, answers (JSON, PNG, .npy) and errors.

Bad input is answered with 400 (malformed) or 404 (not in the data), data that cannot be read
with 422, each with a JSON body naming the problem and the valid choices; no exception reaches
TensorBoard (which would answer with a 500 page and a stack trace).
"""

import dataclasses
import io
import json
import logging
import math
import re

import numpy as np
from tensorboard import errors as tb_errors
from tensorboard.backend import http_util
from werkzeug import wrappers

from tb_cnnviz.reading.lookups import NotFound
from tb_cnnviz.storage.metadata import FormatError

logger = logging.getLogger(__name__)

MAX_PARAM = 1000
JSON, PNG, NPY = "application/json", "image/png", "application/octet-stream"
_INT = re.compile(r"[0-9]{1,15}")


class BadRequest(ValueError):
    """A malformed query (400); `valid` lists the values it could have had."""

    def __init__(self, message, valid=()):
        super().__init__(message)
        self.message, self.valid = message, list(valid)


@dataclasses.dataclass(frozen=True)
class Answer:
    body: object  # JSON-able for JSON answers, else bytes
    content_type: str
    expires: int = 0  # seconds a browser may cache it


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, np.float32), allow_pickle=False)
    return buffer.getvalue()


def shown(value: str) -> str:
    return value if len(value) <= 80 else value[:80] + "…"


def param(request, name, default=None, required=True):
    """A query parameter given once, non-empty and not too long (BadRequest otherwise)."""
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


def int_param(request, name, valid, required=True):
    """An index that must be one of `valid` (NotFound when well-formed but not there; None:
    any, the caller checks it)."""
    value = param(request, name, required=required)
    if value is None:
        return None
    if not _INT.fullmatch(value):
        raise BadRequest(f"{name} must be a non-negative integer, got {shown(value)!r}")
    number = int(value)
    if valid is not None and number not in valid:
        raise NotFound(f"{name} {number} is not logged", valid)
    return number


def choice(request, name, valid, default=None):
    value = param(request, name, default)
    if value not in valid:
        raise BadRequest(f"{name} must be one of {list(valid)}, got {shown(value)!r}", valid)
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


def json_text(value) -> str:
    """JSON with <, > and & escaped, so no response ever carries markup it was given."""
    text = json.dumps(_json_safe(value), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _error(request, code, message, valid=()):
    body = {"error": message}
    if valid:
        body["valid"] = [v if not isinstance(v, str) else shown(v) for v in list(valid)[:1000]]
    return http_util.Respond(request, json_text(body), JSON, code=code)


def wsgi_app(handler):
    """A WSGI app of `handler(request) -> Answer`, its errors turned into JSON answers."""

    @wrappers.Request.application
    def app(request):
        try:
            answer = handler(request)
            body = json_text(answer.body) if answer.content_type == JSON else answer.body
            return http_util.Respond(request, body, answer.content_type, expires=answer.expires)
        except BadRequest as error:
            return _error(request, 400, error.message, error.valid)
        except (NotFound, KeyError, tb_errors.NotFoundError) as error:
            return _error(request, 404, getattr(error, "message", str(error)), getattr(error, "valid", []))
        except tb_errors.InvalidArgumentError as error:  # e.g. an experiment id the Rust data server rejects
            return _error(request, 400, str(error))
        except FormatError as error:
            return _error(request, 422, str(error))
        except Exception:  # noqa: BLE001 - no stack trace reaches the browser
            logger.exception("cnnviz: %s failed", request.path)
            return _error(request, 500, "internal error in the cnnviz plugin; see TensorBoard's log")

    return app
