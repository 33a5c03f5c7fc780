"""Image augmentations of the augmentation-based measures, as plain array operations.

Each augmentation maps a batch of images ``[n, height, width, channels]`` and a NumPy random
generator to a batch of the same shape; every draw comes from the generator, so a measure's
value depends only on its ``seed`` and is the same on every Keras backend (the operations are
NumPy's; Keras's random preprocessing layers draw from the backend's own generator, which
differs between TensorFlow and JAX).

The augmentations (names as measures take them):

* ``flip``: mirror left-right, each image with probability 1/2;
* ``shift``: translate by up to ``SHIFT_FRACTION`` of the height and width (an integer number of
  pixels drawn uniformly per image and axis), filling with zeros: the padded random crop of
  CIFAR training pipelines;
* ``brightness``: add ``delta * (max - min)`` of the batch, ``delta`` uniform in
  ``[-BRIGHTNESS, BRIGHTNESS]`` per image;
* ``contrast``: scale each image's deviation from its mean by a factor uniform in
  ``[1 - CONTRAST, 1 + CONTRAST]``.
"""

from __future__ import annotations

import numpy as np

from pgdl_measures.errors import PGDLError

SHIFT_FRACTION = 0.125
BRIGHTNESS = 0.1
CONTRAST = 0.2


def flip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror each image left-right with probability 1/2."""
    mask = rng.random(len(x)) < 0.5
    out = x.copy()
    out[mask] = x[mask][:, :, ::-1, :]
    return out


def shift(x: np.ndarray, rng: np.random.Generator, fraction: float = SHIFT_FRACTION) -> np.ndarray:
    """Translate each image by a random integer offset up to `fraction` of its size, zero fill."""
    n, height, width, _ = x.shape
    max_dy, max_dx = int(round(fraction * height)), int(round(fraction * width))
    dys = rng.integers(-max_dy, max_dy + 1, n)
    dxs = rng.integers(-max_dx, max_dx + 1, n)
    padded = np.pad(x, ((0, 0), (max_dy, max_dy), (max_dx, max_dx), (0, 0)))
    out = np.empty_like(x)
    for i, (dy, dx) in enumerate(zip(dys, dxs)):
        top, left = max_dy - dy, max_dx - dx
        out[i] = padded[i, top:top + height, left:left + width]
    return out


def brightness(x: np.ndarray, rng: np.random.Generator, amount: float = BRIGHTNESS) -> np.ndarray:
    """Add a random offset of up to `amount` times the batch's value range to each image."""
    scale = float(x.max() - x.min()) if x.size else 0.0
    delta = rng.uniform(-amount, amount, len(x)).astype(np.float32) * scale
    return (x + delta[:, None, None, None]).astype(np.float32)


def contrast(x: np.ndarray, rng: np.random.Generator, amount: float = CONTRAST) -> np.ndarray:
    """Scale each image's deviation from its mean by a random factor in ``[1 - amount, 1 + amount]``."""
    factor = rng.uniform(1 - amount, 1 + amount, len(x)).astype(np.float32)[:, None, None, None]
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return ((x - mean) * factor + mean).astype(np.float32)


AUGMENTATIONS = {"flip": flip, "shift": shift, "brightness": brightness, "contrast": contrast}


def check_names(measure: str, names) -> None:
    """Raise PGDLError unless `names` is a non-empty list of known augmentation names."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
        raise PGDLError(f"measure {measure!r}: parameter augmentations must be a non-empty list of names among "
                        f"{', '.join(AUGMENTATIONS)}, got {names!r}")
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise PGDLError(f"measure {measure!r}: unknown augmentation {', '.join(map(repr, unknown))}; "
                        f"known: {', '.join(AUGMENTATIONS)}")


def augment(x: np.ndarray, names, rng: np.random.Generator) -> np.ndarray:
    """Apply the augmentations `names`, in order, to a batch of images (float32)."""
    out = np.asarray(x, np.float32)
    for name in names:
        out = AUGMENTATIONS[name](out, rng)
    return out
