"""One event of a model, made and written: the probe's pass, then the parts due at this event
(the many-pass methods' maps, every logged method's deletion and insertion, the sanity check,
top examples of a reference set, feature visualisation), packed (`storage.event`) and appended
to the run's event file.

A part that fails is left out of the event, which is still written (`report` says so).
"""

import dataclasses
import math
from collections.abc import Callable

from tb_cnnviz.capture.options import Options
from tb_cnnviz.capture.plan import Plan
from tb_cnnviz.capture.probe import Probe
from tb_cnnviz.capture.run_state import RunState
from tb_cnnviz.capture.writer import EventWriter
from tb_cnnviz.explanations import sanity, trust
from tb_cnnviz.explanations.cam import EVENT_METHODS
from tb_cnnviz.explanations.feature_vis import FeatureVisualiser
from tb_cnnviz.explanations.gradcam import MethodMaps, check_method
from tb_cnnviz.storage import event, maps, metadata, run_header


def in_turn(examples: tuple, per_event: int | None, turn: int) -> tuple:
    """(images, positions, values, map size, first filter) of the filters whose top examples an
    event stores: all of a layer's, or, for a layer of more than `per_event` filters, the
    `turn`-th run of `per_event` of them (cycling), so that an event stays small and each filter
    is stored every ceil(filters / per_event) events."""
    images, positions, values, map_size = examples
    filters = images.shape[1]
    if per_event is None or filters <= per_event:
        return (*examples, 0)
    first = turn % math.ceil(filters / per_event) * per_event
    part = slice(first, first + per_event)
    return images[:, part], positions[:, part], values[:, part], map_size, first


class EventRecorder:
    """Makes and writes the events of one model.

    report(mode, step, error, what): called when `what`, a part of the event, fails; it raises
    (then the event is not written) or returns (then the event is written without it).
    """

    def __init__(self, options: Options, plan: Plan, model, run_state: RunState, report: Callable):
        self._options, self.plan, self._model = options, plan, model
        self._run_state, self._report = run_state, report
        self.probe = Probe(model, plan.spec, plan.head)
        self._visualiser = self._feature_visualiser()
        self._header_written = False
        self._many_pass_maps = {}  # method -> MethodMaps, made at its first event

    def record(self, writer: EventWriter, mode: str, step: int) -> None:
        """Makes the event of `mode` at `step` and writes it (and, first, the run header)."""
        plan = self.plan
        index = self._run_state.event_index(mode, step)  # the every-k-th options count the run's events
        result = self.probe(plan.samples.inputs, plan.targets, mode=mode, true=plan.true)
        target_maps = self._target_maps(mode, step, index, result)
        result = dataclasses.replace(result, method_maps={method: found for method, found in target_maps.items()
                                                          if method not in EVENT_METHODS})
        curves = self._optional(mode, step, "deletion and insertion",
                                lambda: self._curves(mode, index, target_maps, result.target))
        metrics = self._metrics(result, target_maps, curves or {})
        if not self._header_written:
            writer.write(self._header_items(), step)
            self._header_written = True
        cascade = None
        if mode == "eval" and self._options.sanity_check:
            cascade = self._optional(mode, step, "the sanity check", self._cascade)
        filters_due = index % self._options.filters_every == 0
        feature_vis = None
        if self._visualiser is not None and filters_due:
            feature_vis = self._optional(mode, step, "the feature visualisation", self._visualise)
        writer.write(event.pack_event(mode, result, plan.header, plan.labels, metrics.pop("gradcam"), cascade,
                                      self._top_examples(mode, step, index, result, filters_due), feature_vis,
                                      method_metrics=metrics), step)

    def _header_items(self) -> dict:
        """The run header with the probe images, and the reference images of top examples."""
        plan = self.plan
        items = {metadata.RUN_HEADER: (metadata.RUN_HEADER, run_header.pack_run_header(plan.samples.images,
                                                                                         plan.header))}
        if plan.reference is not None:
            items[metadata.REFERENCE] = (metadata.REFERENCE, maps.pack_maps(
                metadata.REFERENCE, run_header.shown_images(plan.reference.images)))
        return items

    def _optional(self, mode, step, what, compute):
        """compute(), or None if it fails (`report`ed): the event is written without that part."""
        try:
            return compute()
        except Exception as error:  # noqa: BLE001 - the event's other data is still worth writing
            self._report(mode, step, error, f"{what} at {mode} step {step} failed and is left out of the event")
            return None

    @staticmethod
    def _due(mode, index, every) -> bool:
        """Whether work done on eval events and on every `every`-th train event (None: on eval
        events only) is due at the train event of this `index` among the run's."""
        return mode == "eval" or (every is not None and index % every == 0)

    def _target_maps(self, mode, step, index, result) -> dict:
        """{method: (N, h, w)} of the probes' target classes by the logged methods this event
        computes: every method but the many-pass ones at the events of expensive_every (or
        trust_every), which are left out where they fail (`report`ed)."""
        options = self._options
        computed = {"gradcam": result.gradcam, "gradcam_pp": result.gradcam_pp, **result.method_maps}
        many_pass_due = self._due(mode, index, options.expensive_every or options.trust_every)
        found = {}
        for method in options.methods:
            if method in computed:
                found[method] = computed[method]
            elif many_pass_due:
                made = self._optional(mode, step, f"the {method} maps",
                                      lambda m=method: self._many_pass(m)(self.plan.samples.inputs, result.target,
                                                                          at_input=False)[1])
                if made is not None:
                    found[method] = made
        return found

    def _many_pass(self, method: str) -> MethodMaps:
        """The maps of a many-pass method (one of `attributions`'), compiled at first use."""
        if method not in self._many_pass_maps:
            plan = self.plan
            self._many_pass_maps[method] = MethodMaps(self._model, plan.head, plan.spec.gradcam_layer,
                                                      plan.samples.image_key, method, check_method(method, {}),
                                                      plan.spec.background_class)
        return self._many_pass_maps[method]

    def _curves(self, mode, index, target_maps: dict, target) -> dict:
        """{method: deletion and insertion curves} of every map in `target_maps`, on eval events
        and every trust_every-th train event ({} on the others)."""
        if not self._due(mode, index, self._options.trust_every):
            return {}
        found = self.probe.deletion_insertion(self.plan.samples.inputs, list(target_maps.values()), target,
                                              self.plan.random_ranks, trust.CURVE_STEPS)
        return dict(zip(target_maps, found))

    def _metrics(self, result, target_maps: dict, curves: dict) -> dict:
        """{method: (len(METRIC_NAMES), N)} trust figures of each method's maps, its rank
        correlation measured from the run's first event that logged the method."""
        plan = self.plan
        metrics = {}
        for method, method_maps in target_maps.items():
            if method == "gradcam":
                first = self._run_state.first_maps(result.classes, result.class_gradcam, plan.source)
                metrics[method] = trust.event_metrics(result, curves=curves.get(method), objects=plan.objects,
                                                      first=first)
            else:
                first = self._run_state.first_maps(result.target, method_maps, plan.source, method)
                metrics[method] = trust.method_metrics(result, method_maps, curves=curves.get(method),
                                                       objects=plan.objects,
                                                       sanity=trust.target_sanity(result, method_maps, first))
        return metrics

    def _top_examples(self, mode, step, index, result, filters_due) -> dict:
        """{path: (images, positions, values, map size, first filter)} this event stores: the
        probes' own at every event, a reference set's every filters_every-th."""
        plan, per_event = self.plan, self._options.max_example_filters
        if plan.reference is None:
            found, turn = result.top_examples, index
        else:
            found = self._optional(mode, step, "the search of the reference images for top examples",
                                   lambda: self.probe.reference_examples(plan.reference.inputs)) if filters_due else {}
            turn = index // self._options.filters_every
        return {path: in_turn(arrays, per_event, turn) for path, arrays in (found or {}).items()}

    def _cascade(self):
        """The cascading randomisation test of the Grad-CAM layer's maps, on a copy of the model."""
        plan = self.plan
        return sanity.sanity_check(self._model, plan.samples.inputs, layer=plan.spec.gradcam_layer,
                                   head=plan.head.kind, output=plan.head.output, image_input=plan.samples.image_key,
                                   background_class=plan.spec.background_class, verbose=False)

    def _feature_visualiser(self):
        """The visualiser of the run header's feature_vis channels (None if none are asked for):
        pixels within the range of the images top examples are found among."""
        plan = self.plan
        if not plan.header.feature_vis:
            return None
        images = (plan.samples if plan.reference is None else plan.reference).images
        low, high = float(images.min()), float(images.max())
        return FeatureVisualiser(self._model, plan.header.feature_vis, image_shape=images.shape[1:],
                                 value_range=(low, high if high > low else low + 1),  # constant images: some room
                                 image_input=plan.samples.image_key)

    def _visualise(self):
        """{path: (channels, H, W, C)} images that maximise the feature_vis channels; a model with
        several inputs holds the first probe's other inputs."""
        samples = self.plan.samples
        first = None if samples.image_key is None else type(samples)(samples.map(lambda array: array[:1]),
                                                                     samples.image_key)
        return self._visualiser(first)
