"""Whether a heat map can be trusted: the per-probe figures an event stores of each method's maps
(`storage.tensors.METRIC_NAMES`).

- faithfulness: the drop of the target's probability when the top `faithfulness_fraction` of
  Grad-CAM's map is blurred (every event; the probe computes it; Grad-CAM's alone).
- deletion / insertion AUC (Petsiuk et al., "RISE", BMVC 2018): the area under the target's
  probability as pixels are blurred, or put back into the blurred image, most salient first;
  "_random" the same in one fixed random order per probe (the chance level).
- sanity_rank_corr (Adebayo et al., NeurIPS 2018): Spearman correlation of each map with the
  same probe's map of the same class at the run's first event.
- pointing_game, energy_in_mask (Zhang et al., ECCV 2016; Wang et al., "Score-CAM", 2020): the
  map's peak on the object, and the share of its mass on it, where the probes' objects are known.

NumPy only: the curves are computed in graph (`curves`).
"""

import numpy as np

from tb_cnnviz.explanations.similarity import rank_correlations
from tb_cnnviz.storage.maps import upsample
from tb_cnnviz.storage.tensors import METRIC_NAMES

# Deletion and insertion: 11 points, 0 % ... 100 % of the pixels, 38 passes of the probes; AUCs
# close to 20 steps' at half the passes (bench/curve_steps.py checks how close).
CURVE_STEPS = 10
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
    stored = np.asarray(first_classes) == np.asarray(classes)[:, :1]  # (N, first slots)
    first = np.asarray(first_maps)[np.arange(len(result)), stored.argmax(axis=1)]  # its first slot of the target
    compared = stored.any(axis=1) & (np.ptp(first.reshape(len(first), -1), axis=1) > 0)
    if compared.any():  # one call ranks every probe's maps
        result[compared] = rank_correlations(np.asarray(maps)[compared, 0], first[compared])
    return result


def event_metrics(result, *, curves=None, first=None, objects=None) -> np.ndarray:
    """(len(METRIC_NAMES), N) float32 of Grad-CAM's maps at one event, NaN where not computed.

    result: the event's `capture.probe.ProbeResult`; curves: `curves.DeletionInsertion`'s of
    its Grad-CAM maps, on events that compute them; first: (classes, class maps) of the run's
    first event; objects: (N, H, W) bool masks of the probes' objects at the input resolution.
    """
    sanity = None if first is None else sanity_to_first(result.classes, result.class_gradcam, *first)
    return method_metrics(result, result.gradcam, curves=curves, objects=objects, sanity=sanity,
                          faithfulness=result.faithfulness_drop)


def target_sanity(result, maps, first) -> np.ndarray | None:
    """`sanity_to_first` of a method's maps of the target class (N, h, w), given its (targets,
    maps) at the run's first event that logged it (None: none to compare with)."""
    if first is None:
        return None
    first_targets, first_maps = first
    return sanity_to_first(result.target[:, None], maps[:, None], first_targets[:, None], first_maps[:, None])


def method_metrics(result, maps, *, curves=None, objects=None, sanity=None, faithfulness=None) -> np.ndarray:
    """(len(METRIC_NAMES), N) float32 of one method's `maps` (N, h, w) of the target classes of
    an event (`result`), NaN where not computed: as `event_metrics`, with its rank correlation
    (`sanity`) and faithfulness given (faithfulness is Grad-CAM's alone)."""
    values = {} if faithfulness is None else {"faithfulness": faithfulness}
    if curves is not None:
        values.update({CURVE_METRICS[name]: auc(curve) for name, curve in curves.items()})
        if result.target_pixels is not None:  # a segmentation probe with no pixel of its class: nothing to measure
            for name in CURVE_METRICS.values():
                values[name] = np.where(result.target_pixels > 0, values[name], np.nan)
    if sanity is not None:
        values["sanity_rank_corr"] = sanity
    if objects is not None:
        maps = upsample(maps, result.image_size)
        flat = np.ptp(maps.reshape(len(maps), -1), axis=1) == 0  # no peak, no mass on anything: NaN
        values["pointing_game"] = np.where(flat, np.nan, pointing_hits(maps, objects)).astype(np.float32)
        values["energy_in_mask"] = energy_in_mask(maps, objects).astype(np.float32)
    stored = np.full((len(METRIC_NAMES), len(result.target)), np.nan, np.float32)
    for name, value in values.items():
        stored[METRIC_NAMES.index(name)] = value
    return stored


def pointing_hits(maps, masks, tolerance=1):
    """(N,) bool: each map's maximum (the first, row-major, on ties) lies on its object or
    within `tolerance` pixels of it (default 1: a peak in the (2 * tolerance + 1)-pixel square
    around any mask pixel is a hit; the original pointing game allows 15). A constant map has
    no peak: a miss."""
    hits = []
    for cam_map, mask in zip(maps, masks):
        if np.ptp(cam_map) == 0:
            hits.append(False)
            continue
        y, x = np.unravel_index(np.argmax(cam_map), cam_map.shape)
        window = mask[max(0, y - tolerance): y + tolerance + 1, max(0, x - tolerance): x + tolerance + 1]
        hits.append(bool(window.any()))
    return np.asarray(hits, bool)


def pointing_game(maps, masks, tolerance=1):
    """Fraction of maps whose maximum lies on the object (`pointing_hits`)."""
    return float(np.mean(pointing_hits(maps, masks, tolerance)))


def energy_in_mask(maps, masks):
    """Per map, the share of its non-negative mass that lies inside the mask (NaN for an
    all-zero map): Score-CAM's energy-based pointing game, which sees where a map puts its
    weight where the pointing game sees only its peak."""
    maps = np.clip(np.asarray(maps, np.float64), 0, None)
    total = maps.sum(axis=(1, 2))
    inside = np.where(masks, maps, 0).sum(axis=(1, 2))
    return np.divide(inside, total, out=np.full_like(total, np.nan), where=total > 0)
