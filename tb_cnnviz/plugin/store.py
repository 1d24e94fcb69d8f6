"""cnnviz data of a TensorBoard experiment, read only through the data provider: the plugin's
data source (`RunSource` is one run of it as a `reading.lookups.Source`).

Answers for one step read that step's blobs alone (a blob sequence lists blob keys without
their payloads); decoded headers are cached by blob key, and a run's listings of blob keys
are reused for LISTING_SECONDS.
"""

import collections
import dataclasses
import logging
import threading
import time

from tensorboard import errors
from tensorboard.data import provider

from tb_cnnviz.reading.lookups import NotFound
from tb_cnnviz.storage import codec, metadata, run_header, tensors
from tb_cnnviz.storage.metadata import PREDICTIONS, REFERENCE, RUN_HEADER

ALL = 10**9  # `downsample` value that keeps every step
# How long a run's listing of blob keys is reused. The tab asks for one step's images in a
# burst, and every listing costs a data-server round trip or, with the Python loader, time
# proportional to the run's steps (bench/backend_latency.py).
LISTING_SECONDS = 1.0
# JSON bytes of decoded headers kept (decoded, a header takes two to three times its JSON size
# in memory; a predictions header, which indexes its step, is the largest).
HEADER_CACHE_BYTES = 32 * 2**20
logger = logging.getLogger(__name__)


class Blobs(list):
    """The BlobReferences of one step of a blob sequence, with the time it was written (a
    step rewritten by a resumed run keeps its blob keys but gets a new wall time)."""

    def __init__(self, datum):
        super().__init__(datum.values)
        self.wall_time = datum.wall_time


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """A run as the plugin serves it."""

    header: run_header.RunHeader
    images: dict  # the decoded run header summary: the probe images' shape and ranges
    probes: Blobs  # the run header summary's blobs: header, then one PNG per probe
    steps: dict  # mode -> steps of complete events
    reference: Blobs | None = None  # top examples' own reference images: header, then one PNG each

    @property
    def samples(self) -> int:
        return run_header.probe_shape(self.images)[0]


class _LRU:
    """Least-recently-used cache bounded by the summed sizes its compute functions report."""

    def __init__(self, max_size):
        self._max_size, self._size = max_size, 0
        self._items, self._lock = collections.OrderedDict(), threading.Lock()  # key -> (value, size)

    def get(self, key, compute):
        """The value of `key`; compute() -> (value, size) when it is not cached."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value, size = compute()
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, size)
                self._size += size
            while self._size > self._max_size and len(self._items) > 1:
                self._size -= self._items.popitem(last=False)[1][1]
        return value


class Store:
    def __init__(self, data_provider):
        self._provider = data_provider
        self._headers = _LRU(HEADER_CACHE_BYTES)
        self._listings, self._listings_lock = {}, threading.Lock()  # (experiment, run, tag) -> (time, {step: Blobs})

    # -- raw access ---------------------------------------------------------------------------
    def _blob_series(self, ctx, experiment, runs, tags):
        """{run: {tag: {step: Blobs}}} for the given runs and tags."""
        result = self._provider.read_blob_sequences(
            ctx, experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME, downsample=ALL,
            run_tag_filter=provider.RunTagFilter(runs=runs, tags=tags),
        )
        return {
            run: {tag: {datum.step: Blobs(datum) for datum in data} for tag, data in by_tag.items()}
            for run, by_tag in result.items()
        }

    def _remember(self, experiment, series):
        """Keeps {run: {tag: {step: Blobs}}} listings, dropping expired ones: beyond the
        listings of the last second, only those of the last burst stay in memory."""
        now = time.monotonic()
        with self._listings_lock:
            for key in [k for k, (listed, _) in self._listings.items() if now - listed > LISTING_SECONDS]:
                del self._listings[key]
            for run, by_tag in series.items():
                self._listings.update({(experiment, run, tag): (now, steps) for tag, steps in by_tag.items()})

    def _listing(self, ctx, experiment, run, tags, fresh=False):
        """{tag: {step: Blobs}} of one run, from listings made in the last LISTING_SECONDS."""
        now = time.monotonic()
        with self._listings_lock:
            cached = {} if fresh else {tag: self._listings.get((experiment, run, tag)) for tag in tags}
        found = {tag: hit[1] for tag, hit in cached.items() if hit and now - hit[0] <= LISTING_SECONDS}
        missing = [tag for tag in tags if tag not in found]
        if missing:
            read = self._blob_series(ctx, experiment, [run], missing).get(run, {})
            read = {tag: read.get(tag, {}) for tag in missing}
            self._remember(experiment, {run: read})
            found.update(read)
        return found

    def listing(self, ctx, experiment, run, tag) -> dict:
        """{step: Blobs} of one blob summary of a run (a listing of the last LISTING_SECONDS)."""
        return self._listing(ctx, experiment, run, [tag])[tag]

    def blob(self, ctx, reference):
        return self._provider.read_blob(ctx, blob_key=reference.blob_key)

    def header(self, ctx, blobs):
        """Decoded element 0 of a blob sequence, cached until that step is rewritten."""
        key = (blobs[0].blob_key, blobs.wall_time)

        def decode():
            blob = self.blob(ctx, blobs[0])
            return codec.decode_header(blob), len(blob)

        return self._headers.get(key, decode)

    # -- runs ---------------------------------------------------------------------------------
    _RUN_TAGS = [RUN_HEADER, REFERENCE] + [metadata.tag(PREDICTIONS, m) for m in metadata.MODES]

    def _run_names(self, ctx, experiment):
        listing = self._provider.list_blob_sequences(
            ctx, experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME,
            run_tag_filter=provider.RunTagFilter(tags=[RUN_HEADER]))
        return sorted(run for run, tags in listing.items() if RUN_HEADER in tags)

    def _run_info(self, ctx, by_tag):
        """The run header (latest summary) with its probe blobs and logged steps."""
        probes = by_tag[RUN_HEADER][max(by_tag[RUN_HEADER])]
        images = self.header(ctx, probes)
        steps = {mode: sorted(by_tag.get(metadata.tag(PREDICTIONS, mode), {})) for mode in metadata.MODES}
        reference = by_tag.get(REFERENCE)
        return RunInfo(run_header.unpack_run_header(images, len(probes)), images, probes, steps,
                       reference[max(reference)] if reference else None)

    def runs(self, ctx, experiment):
        """{run: RunInfo} for every run with cnnviz data, in two provider calls plus headers.

        A run that cannot be read gets its error message (str) instead, so one bad run (newer
        format, unreadable data) does not hide the others.
        """
        runs = self._run_names(ctx, experiment)
        series = self._blob_series(ctx, experiment, runs, self._RUN_TAGS) if runs else {}
        self._remember(experiment, {run: {tag: by_tag.get(tag, {}) for tag in self._RUN_TAGS}
                                    for run, by_tag in series.items()})
        result = {}
        for run in runs:
            if not series.get(run, {}).get(RUN_HEADER):
                continue
            try:
                result[run] = self._run_info(ctx, series[run])
            except metadata.FormatError as error:
                result[run] = str(error)
            except errors.InvalidArgumentError:  # a bad request (e.g. experiment id), not a bad run
                raise
            except Exception as error:  # noqa: BLE001 - e.g. files removed while serving
                logger.warning("cnnviz: cannot read run %r: %r", run, error)
                result[run] = f"cannot read this run's cnnviz data: {error}"
        return result

    def run(self, ctx, experiment, run) -> RunInfo:
        """One run, reading only that run's data."""
        by_tag = self._listing(ctx, experiment, run, self._RUN_TAGS)
        if not by_tag.get(RUN_HEADER):
            raise NotFound(f"no cnnviz data for run {run!r}", self._run_names(ctx, experiment))
        return self._run_info(ctx, by_tag)

    # -- one step -----------------------------------------------------------------------------
    def step_blobs(self, ctx, experiment, run, tags, step):
        """{tag: BlobReferences} of several summaries at one step."""
        series = self._listing(ctx, experiment, run, tags)
        if any(step not in series[tag] for tag in tags):  # logged since the listing was made?
            series = self._listing(ctx, experiment, run, tags, fresh=True)
        result = {}
        for tag in tags:
            by_step = series.get(tag, {})
            if step not in by_step:
                raise NotFound(f"nothing logged under {tag!r} at step {step} in run {run!r}", sorted(by_step))
            result[tag] = by_step[step]
        return result

    def tensor_series(self, ctx, experiment, run, tags):
        """{tag: {step: numpy array}} of several tensor summaries of one run in one read ({} for
        a tag it lacks)."""
        result = self._provider.read_tensors(
            ctx, experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME, downsample=ALL,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=tags),
        ).get(run, {})
        return {tag: {datum.step: tensors.unpack_tensor(datum.numpy, f"{tag!r} in run {run!r}")
                      for datum in result.get(tag, [])} for tag in tags}


class RunSource:
    """One run of an experiment, for one request: a `reading.lookups.Source` over the store."""

    def __init__(self, store: Store, ctx, experiment: str, name: str, info: RunInfo):
        self._store, self._ctx, self._experiment, self._name, self._info = store, ctx, experiment, name, info
        self.header = info.header

    def steps(self, mode: str) -> list:
        return self._info.steps[mode]

    def stored_steps(self, tag: str) -> list:
        return sorted(self._store.listing(self._ctx, self._experiment, self._name, tag))

    def blobs(self, tag: str, step: int) -> Blobs:
        return self._store.step_blobs(self._ctx, self._experiment, self._name, [tag], step)[tag]

    def blob(self, reference) -> bytes:
        return self._store.blob(self._ctx, reference)

    def decoded(self, blobs: Blobs) -> dict:
        return self._store.header(self._ctx, blobs)

    def tensors(self, tags: list) -> dict:
        return self._store.tensor_series(self._ctx, self._experiment, self._name, tags)

    def run_blobs(self, kind: str) -> Blobs | None:
        return {RUN_HEADER: self._info.probes, REFERENCE: self._info.reference}[kind]
