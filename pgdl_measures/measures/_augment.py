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

from pgdl_measures.params import NameList

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
#: The rule of a measure's ``augmentations`` parameter.
NAMES = NameList(tuple(AUGMENTATIONS), what="augmentation")


def augment(x: np.ndarray, names, rng: np.random.Generator) -> np.ndarray:
    """Apply the augmentations `names`, in order, to a batch of images (float32)."""
    out = np.asarray(x, np.float32)
    for name in names:
        out = AUGMENTATIONS[name](out, rng)
    return out


# -- the fixed transforms of Aithal et al. (the PGDL runner-up) -----------------------------------
#
# As their ``runner_up_solution/complexity.py`` (sumukhaithal6/pgdl, ``complexity``) builds them
# with ``tf.image``; written here in NumPy so they run on every backend and draw from a seeded
# generator.

#: ``tf.image.rgb_to_grayscale``'s weights
GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)
#: the saturation factor's range of their ``tf.image.random_saturation(x, 0.6, 1.6)``
SATURATION_RANGE = (0.6, 1.6)
#: examples sharing one saturation factor (``random_saturation`` draws one per call, and they
#: call it once per batch of 64)
SATURATION_GROUP = 64


def mirror(x: np.ndarray) -> np.ndarray:
    """Mirror every image left-right (``tf.image.flip_left_right``)."""
    return np.ascontiguousarray(x[:, :, ::-1, :])


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(-1)
    spread = value - rgb.min(-1)
    safe = np.where(spread > 0, spread, 1.0)
    saturation = np.where(value > 0, spread / np.where(value > 0, value, 1.0), 0.0)
    hue = np.where(value == r, (g - b) / safe, np.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = np.where(spread > 0, (hue / 6.0) % 1.0, 0.0)
    return np.stack([hue, saturation, value], -1)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0] * 6.0, hsv[..., 1], hsv[..., 2]
    sector = np.floor(h) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(hsv.shape, hsv.dtype)
    for k, (r, g, b) in enumerate(choices):
        mask = sector == k
        out[..., 0] = np.where(mask, r, out[..., 0])
        out[..., 1] = np.where(mask, g, out[..., 1])
        out[..., 2] = np.where(mask, b, out[..., 2])
    return out


def random_saturation(x: np.ndarray, rng: np.random.Generator, group: int = SATURATION_GROUP) -> np.ndarray:
    """Scale the HSV saturation by a factor uniform in :data:`SATURATION_RANGE` (clipped to [0, 1]),
    one factor per `group` consecutive images (``tf.image.random_saturation``).

    A one-channel image is taken to RGB (three equal channels: saturation 0, which no factor
    changes) and back with ``rgb_to_grayscale``, as the authors do: the result is the image
    times the grey weights' sum, 0.9999, and no factor is drawn."""
    x = np.asarray(x, np.float32)
    if x.shape[-1] == 1:
        return np.tensordot(np.repeat(x, 3, axis=-1), GRAY_WEIGHTS, axes=([-1], [0]))[..., None].astype(np.float32)
    factors = np.repeat(rng.uniform(*SATURATION_RANGE, -(-len(x) // group)), group)[:len(x)]
    hsv = _rgb_to_hsv(x.astype(np.float64))
    hsv[..., 1] = np.clip(hsv[..., 1] * factors[:, None, None], 0.0, 1.0)
    return _hsv_to_rgb(hsv).astype(np.float32)


def _resize_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres, no antialiasing (``tf.image.resize``'s default)."""

    def axis(n_in: int, n_out: int):
        centre = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        floor = np.floor(centre)
        lower = np.clip(floor, 0, n_in - 1).astype(int)
        upper = np.clip(np.ceil(centre), 0, n_in - 1).astype(int)
        return lower, upper, (centre - floor).astype(np.float32)

    top, bottom, dy = axis(x.shape[1], height)
    left, right, dx = axis(x.shape[2], width)
    rows = x[:, top] + (x[:, bottom] - x[:, top]) * dy[None, :, None, None]
    return rows[:, :, left] + (rows[:, :, right] - rows[:, :, left]) * dx[None, None, :, None]


def crop_and_resize(x: np.ndarray, fraction: float = 0.9) -> np.ndarray:
    """Keep the central `fraction` of each image and scale it back to the full size
    (``tf.image.central_crop`` then ``tf.image.resize_with_pad``; the crop keeps the aspect
    ratio, so nothing is padded). The crop's margin is ``floor((size - size * fraction) / 2)``."""
    _, height, width, _ = x.shape
    top = int((height - height * fraction) / 2)
    left = int((width - width * fraction) / 2)
    cropped = np.asarray(x, np.float32)[:, top:height - top, left:width - left]
    return _resize_bilinear(cropped, height, width).astype(np.float32)


def sobel_horizontal(x: np.ndarray) -> np.ndarray:
    """The horizontal Sobel derivative ``d/dx`` of each channel, scaled to ``dx / 4 + 0.5``
    (``tf.image.sobel_edges(x)[..., 1] / 4 + 0.5``; reflected borders)."""
    padded = np.pad(np.asarray(x, np.float32), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    diff = padded[:, :, 2:] - padded[:, :, :-2]
    dx = diff[:, :-2] + 2 * diff[:, 1:-1] + diff[:, 2:]
    return (dx / 4 + 0.5).astype(np.float32)


def shift_brightness(x: np.ndarray, delta: float = 0.5) -> np.ndarray:
    """Add `delta` to every value (``tf.image.adjust_brightness``, no clipping for floats)."""
    return (np.asarray(x, np.float32) + np.float32(delta)).astype(np.float32)


def random_erase(x: np.ndarray, rng: np.random.Generator, area_range=(0.02, 0.4), aspect: float = 0.3) -> np.ndarray:
    """Set one random rectangle of each image to 0 (their ``random_erase_np_v2``).

    Side bounds: ``lo = round(sqrt(a_lo * A * aspect))``, ``hi = round(sqrt(a_hi * A / aspect))``
    (``A`` the image's area), capped at the height and the width; the rectangle's height and
    width are uniform integers in ``[lo, cap)``, its corner uniform in ``[0, H - h)`` x ``[0, W - w)``.
    """
    out = np.array(x, np.float32)
    _, height, width, _ = out.shape
    area = height * width
    low = int(np.round(np.sqrt(area_range[0] * area * aspect)))
    high = int(np.round(np.sqrt(area_range[1] * area / aspect)))
    for img in out:
        h = int(rng.integers(low, min(high, height)))
        w = int(rng.integers(low, min(high, width)))
        top = int(rng.integers(0, max(height - h, 1)))
        left = int(rng.integers(0, max(width - w, 1)))
        img[top:top + h, left:left + w, :] = 0.0
    return out


def runner_up_transforms(x: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The seven transformed copies of the images `x` Aithal et al. compare predictions on, in
    their order: flip, saturation, crop, Sobel, brightness, flip then saturation, random erase."""
    flipped = mirror(x)
    return [flipped, random_saturation(x, rng), crop_and_resize(x), sobel_horizontal(x), shift_brightness(x),
            random_saturation(flipped, rng), random_erase(x, rng)]
