"""A synthetic image task whose answer has a location, for demos and tests (no downloads).

Each image is a coloured shape (square, disc, triangle or cross) at a random place on a
noisy background; the mask tells where it is, so one can check that Grad-CAM points at it.
With `mark=True` a small square in the top-left corner, coloured by class, gives the answer
away: a shortcut that a network learns instead of the shapes, and Grad-CAM shows it.
"""

import numpy as np

SHAPE_NAMES = ("square", "disc", "triangle", "cross")
MARK_COLOURS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 0.0))  # per class


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


def mark_side(size):
    """Side in pixels of the class-giving mark in the top-left corner of `size`-pixel images."""
    return max(2, size // 10)


def shapes(count, size=40, seed=0, noise=0.15, mark=False):
    """(images (count, size, size, 3) float32 in [0, 1], labels (count,), masks (count, size, size) bool).

    Class names are SHAPE_NAMES; the label is the index of the shape drawn. With `mark`, each
    image also carries a mark_side(size) square in its top-left corner of colour
    MARK_COLOURS[label]; a shape that would come within a pixel of it is drawn mirrored
    left-right instead, so the masks stay the shapes' own. The random draws do not change: the
    same seed gives the same labels, noise, shape colours and sizes with or without the mark.
    """
    rng = np.random.default_rng(seed)
    images = np.clip(rng.normal(0.5, noise, (count, size, size, 3)), 0, 1).astype(np.float32)
    labels = rng.integers(0, len(SHAPE_NAMES), count)
    masks = np.zeros((count, size, size), bool)
    side = mark_side(size)
    for i, label in enumerate(labels):
        radius = rng.uniform(0.12, 0.2) * size
        cy, cx = rng.uniform(radius + 1, size - radius - 1, 2)
        mask = _shape_mask(SHAPE_NAMES[label], size, cy, cx, radius)
        if mark and mask[:side + 1, :side + 1].any():  # on the mark or next to it
            mask = _shape_mask(SHAPE_NAMES[label], size, cy, size - 1 - cx, radius)
        colour = rng.uniform(0.0, 1.0, 3)
        colour[rng.integers(0, 3)] = rng.choice([0.05, 0.95])  # keep it visible on grey
        images[i][mask] = colour
        masks[i] = mask
        if mark:
            images[i, :side, :side] = MARK_COLOURS[label]
    return images, labels, masks


def training_shapes(count, size=40, seed=1, mark=False, smooth=1 / 3):
    """(images, labels, masks) of `shapes` for training: a `smooth` share of them (seed + 4) on
    a nearly smooth background (noise 0.02), the others on the usual noisy one. A model that
    has seen smooth backgrounds reads a blurred image as one: deletion and insertion, which blur
    pixels, then measure the map rather than the blur (docs/trust.md)."""
    noisy_count = count - round(count * smooth)
    on_noise = shapes(noisy_count, size=size, seed=seed, mark=mark)
    on_smooth = shapes(count - noisy_count, size=size, seed=seed + 4, noise=0.02, mark=mark)
    return tuple(np.concatenate(pair) for pair in zip(on_noise, on_smooth))
