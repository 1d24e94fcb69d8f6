"""Whether a heat map can be trusted: the per-probe figures an event stores (`format.METRIC_NAMES`).

- faithfulness: the drop of the target's probability when the top `faithfulness_fraction` of
  the map is blurred (every event; the probe computes it).
- deletion / insertion AUC (Petsiuk et al., "RISE", BMVC 2018): the area under the target's
  probability as pixels are blurred, or put back into the blurred image, most salient first;
  "_random" the same in one fixed random order per probe (the chance level).
- sanity_rank_corr (Adebayo et al., NeurIPS 2018): Spearman correlation of each map with the
  same probe's map of the same class at the run's first event.
- pointing_game, energy_in_mask (Zhang et al., ECCV 2016; Wang et al., "Score-CAM", 2020): the
  map's peak on the object, and the share of its mass on it, where the probes' objects are known.

numpy only, apart from the curves the probe computes in graph.
"""

import numpy as np

from tb_cnnviz import format
from tb_cnnviz.datasets import energy_in_mask, pointing_hits
from tb_cnnviz.sanity import rank_correlations

CURVE_STEPS = 20  # deletion and insertion: 21 points, 0 % ... 100 % of the pixels
RANDOM_SEED = 0  # of the random ranking, one fixed permutation per probe
CURVE_METRICS = {"deletion": "deletion_auc", "deletion_random": "deletion_auc_random",
                 "insertion": "insertion_auc", "insertion_random": "insertion_auc_random"}


def random_ranks(count: int, pixels: int, seed: int = RANDOM_SEED) -> np.ndarray:
    """(count, pixels) int32: each pixel's rank in one fixed random order per probe."""
    rng = np.random.default_rng(seed)
    return np.stack([np.argsort(rng.permutation(pixels)) for _ in range(count)]).astype(np.int32)


def auc(curves: np.ndarray) -> np.ndarray:
    """Area under curves (..., points) sampled evenly on [0, 1], by the trapezoid rule."""
    curves = np.asarray(curves, np.float64)
    return ((curves[..., 1:] + curves[..., :-1]).sum(axis=-1) / (2 * (curves.shape[-1] - 1))).astype(np.float32)


def sanity_to_first(classes, maps, first_classes, first_maps) -> np.ndarray:
    """(N,) Spearman correlation of each probe's target map (slot 0 of `maps`, (N, slots, h, w))
    with its map of the same class at the first event; NaN where the first event did not
    explain that class, or its map was constant (nothing to have moved away from)."""
    result = np.full(len(classes), np.nan, np.float32)
    for probe, (target, stored) in enumerate(zip(np.asarray(classes)[:, 0], np.asarray(first_classes))):
        slot = np.flatnonzero(stored == target)
        if slot.size and np.ptp(first_maps[probe, slot[0]]) > 0:
            result[probe] = rank_correlations(maps[probe, :1], first_maps[probe, slot[:1]])[0]
    return result


def event_metrics(result, *, curves=None, first=None, objects=None) -> np.ndarray:
    """(len(METRIC_NAMES), N) float32 of one event, NaN where not computed.

    result: the event's `probe.ProbeResult`; curves: `Probe.deletion_insertion`'s, on events
    that compute them; first: (classes, class maps) of the run's first event; objects: (N, H, W)
    bool masks of the probes' objects at the input resolution.
    """
    values = {"faithfulness": result.faithfulness_drop}
    if curves is not None:
        values.update({CURVE_METRICS[name]: auc(curve) for name, curve in curves.items()})
        if result.target_pixels is not None:  # a segmentation probe with no pixel of its class: nothing to measure
            for name in CURVE_METRICS.values():
                values[name] = np.where(result.target_pixels > 0, values[name], np.nan)
    if first is not None:
        values["sanity_rank_corr"] = sanity_to_first(result.classes, result.class_gradcam, *first)
    if objects is not None:
        maps = format.upsample(result.gradcam, result.image_size)
        flat = np.ptp(maps.reshape(len(maps), -1), axis=1) == 0  # no peak, no mass on anything: NaN
        values["pointing_game"] = np.where(flat, np.nan, pointing_hits(maps, objects)).astype(np.float32)
        values["energy_in_mask"] = energy_in_mask(maps, objects).astype(np.float32)
    stored = np.full((len(format.METRIC_NAMES), len(result.target)), np.nan, np.float32)
    for name, value in values.items():
        stored[format.METRIC_NAMES.index(name)] = value
    return stored
