"""A synthetic image task whose answer has a location, for demos and tests (no downloads).

Each image is a coloured shape (square, disc, triangle or cross) at a random place on a
noisy background; the mask tells where it is, so one can check that Grad-CAM points at it.
"""

import numpy as np

SHAPE_NAMES = ("square", "disc", "triangle", "cross")


def _shape_mask(kind, size, cy, cx, radius):
    y, x = np.mgrid[0:size, 0:size]
    dy, dx = y - cy, x - cx
    if kind == "square":
        return (np.abs(dy) <= radius * 0.8) & (np.abs(dx) <= radius * 0.8)
    if kind == "disc":
        return dy**2 + dx**2 <= radius**2
    if kind == "triangle":  # apex up, base at cy + radius
        return (dy <= radius * 0.8) & (dy >= -radius) & (np.abs(dx) <= (dy + radius) * 0.55)
    if kind == "cross":
        arm = max(1.0, radius * 0.3)
        return ((np.abs(dy) <= arm) & (np.abs(dx) <= radius)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= radius))
    raise ValueError(f"unknown shape {kind!r}; choose one of {SHAPE_NAMES}")


def shapes(count, size=40, seed=0, noise=0.15):
    """(images (count, size, size, 3) float32 in [0, 1], labels (count,), masks (count, size, size) bool).

    Class names are SHAPE_NAMES; the label is the index of the shape drawn.
    """
    rng = np.random.default_rng(seed)
    images = np.clip(rng.normal(0.5, noise, (count, size, size, 3)), 0, 1).astype(np.float32)
    labels = rng.integers(0, len(SHAPE_NAMES), count)
    masks = np.zeros((count, size, size), bool)
    for i, label in enumerate(labels):
        radius = rng.uniform(0.12, 0.2) * size
        cy, cx = rng.uniform(radius + 1, size - radius - 1, 2)
        mask = _shape_mask(SHAPE_NAMES[label], size, cy, cx, radius)
        colour = rng.uniform(0.0, 1.0, 3)
        colour[rng.integers(0, 3)] = rng.choice([0.05, 0.95])  # keep it visible on grey
        images[i][mask] = colour
        masks[i] = mask
    return images, labels, masks


def pointing_game(maps, masks, tolerance=1):
    """Fraction of maps whose maximum lies on the object (mask grown by `tolerance` pixels)."""
    hits = []
    for cam_map, mask in zip(maps, masks):
        y, x = np.unravel_index(np.argmax(cam_map), cam_map.shape)
        window = mask[max(0, y - tolerance): y + tolerance + 1, max(0, x - tolerance): x + tolerance + 1]
        hits.append(bool(window.any()))
    return float(np.mean(hits))
