"""Helpers of the representation- and margin-based measures (Natekar & Sharma, Aithal et al.,
Lassance et al., Jiang et al.): class-balanced samples, a layer's representations, output
margins, the Davies-Bouldin index, within-class mixup, and the image-input check.

The math is plain NumPy (float64); models are called through Keras only (no autodiff).
"""

from __future__ import annotations

import math

import numpy as np

from pgdl_measures.autodiff import cached, model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common

# ----------------------------------------------------------------------------- inputs

def require_images(model) -> None:
    """Raise PGDLError unless `model` takes images ``[batch, height, width, channels]``.

    Measures that flip, shift or recolour their inputs call this first, so a model on feature
    vectors (the official sample task's MLPs on 3 features) gets a clear message, not a crash.
    """
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3:
        raise PGDLError(f"needs image inputs [height, width, channels]; model {model.name!r} takes inputs of "
                        f"shape {shape} (this measure augments images, so it does not apply to this task)")


def class_balanced_sample(dataset, num_classes: int, per_class: int, *, read_limit: int | None = None,
                          batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The first `per_class` training examples of every class, in dataset order.

    Reads the dataset in order until every class has `per_class` examples or `read_limit`
    examples were read (a class with fewer examples keeps what it has).

    Returns:
        ``(x, y)``: float32 inputs and int64 labels, grouped by class (class 0 first).

    Raises:
        PGDLError: no example was read, or a label is outside ``[0, num_classes)``.
    """
    kept: dict[int, list[np.ndarray]] = {c: [] for c in range(num_classes)}
    counts = np.zeros(num_classes, np.int64)
    for x, y in dataset.batches(batch_size, limit=read_limit):
        y = np.asarray(y).astype(np.int64).reshape(-1)
        _common.check_labels(y, num_classes)
        x = np.asarray(x, np.float32)
        for c in np.unique(y):
            room = per_class - counts[c]
            if room > 0:
                rows = x[y == c][:room]
                kept[int(c)].append(rows)
                counts[c] += len(rows)
        if np.all(counts >= per_class):
            break
    xs = [np.concatenate(kept[c]) for c in range(num_classes) if kept[c]]
    if not xs:
        raise PGDLError("the training data yielded no examples")
    ys = [np.full(int(counts[c]), c, np.int64) for c in range(num_classes) if kept[c]]
    return np.concatenate(xs), np.concatenate(ys)


def first_examples(dataset, limit: int | None, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` training examples (all when None) as ``(x float32, y int64)``."""
    xs, ys = [], []
    for x, y in dataset.batches(batch_size, limit=limit):
        xs.append(np.asarray(x, np.float32))
        ys.append(np.asarray(y).astype(np.int64).reshape(-1))
    if not xs:
        raise PGDLError("the training data yielded no examples")
    return np.concatenate(xs), np.concatenate(ys)


# ----------------------------------------------------------------------------- models

#: inputs up to this many examples are run eagerly by :func:`predict` (tracing a function costs
#: more than it saves on a few batches of a model seen once)
EAGER_EXAMPLES = 512


def predict(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """`model`'s outputs on `x` in inference mode, in batches of `batch_size`, as float32 NumPy.

    Up to :data:`EAGER_EXAMPLES` examples are run by calling the model (nothing to compile);
    more through ``predict_on_batch``, in batches of exactly `batch_size` (the last one padded
    by repeating its final example, so the compiled function is traced once per model)."""
    import keras

    # a few batches run eagerly (no function to trace for a model seen once); more are compiled
    eager = len(x) <= EAGER_EXAMPLES
    outs = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        n = len(chunk)
        if n < batch_size and not eager:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - n, axis=0)])
        out = model(chunk, training=False) if eager else model.predict_on_batch(chunk)
        outs.append(np.asarray(keras.ops.convert_to_numpy(out), np.float32)[:n])
    if not outs:
        return np.zeros((0,), np.float32)
    return np.concatenate(outs)


def layers_upto(model, parts, index: int):
    """A fresh input and the output of the model's layers up to and including ``parts.layers[index]``
    (``parts``: :func:`pgdl_measures.autodiff.model_graph.logit_layers`), for building a sub-model."""
    import keras

    spec = model.inputs[0]
    x = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype)
    h = x
    for item in parts.layers[:index + 1]:
        h = item(h)
    return x, h


def representation_model(model, layer: int):
    """A model sharing `model`'s layers whose output is layer `layer`'s output, flattened.

    `layer` indexes the chain of the model's layers up to its logits
    (:func:`pgdl_measures.autodiff.model_graph.logit_layers`; a final softmax is left out), as
    Python indexes a list: ``0`` is the first layer, ``-1`` the logits, ``-2`` the layer before.

    Raises:
        PGDLError: `layer` is out of range, or the model is not a chain of layers.
    """
    import keras

    parts = model_graph.logit_layers(model)
    count = len(parts.layers)
    if not -count <= layer < count:
        raise PGDLError(f"layer {layer} does not exist: model {model.name!r} has {count} layers up to its "
                        f"logits (indices 0..{count - 1}, or -{count}..-1 from the end)")
    index = layer % count

    def build():
        x, h = layers_upto(model, parts, index)
        if len(h.shape) > 2:
            h = keras.ops.reshape(h, (-1, math.prod(h.shape[1:])))
        return keras.Model(x, h, name=f"{model.name}_layer_{index}")

    return cached(model, ("representation_model", index), build, backend="any")


def logits(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's logits on `x` (a final softmax left out, see :mod:`model_graph`)."""
    return predict(model_graph.logits_model(model), x, batch_size)


# ----------------------------------------------------------------------------- math

def output_margins(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-example output margins ``z_y - max_{j != y} z_j`` of logits ``z [n, C]`` (float64).

    Positive when the example is classified correctly, negative otherwise.
    """
    z = np.asarray(z, np.float64)
    y = np.asarray(y, np.int64)
    rows = np.arange(len(z))
    true = z[rows, y]
    others = z.copy()
    others[rows, y] = -np.inf
    return true - others.max(axis=1)


def davies_bouldin_from_stats(centroids: np.ndarray, spreads: np.ndarray) -> float:
    """The Davies-Bouldin index from each cluster's centroid ``c_i`` and spread ``s_i`` (the
    mean Euclidean distance of its points to ``c_i``)::

        DB = (1/k) sum_i max_{j != i} (s_i + s_j) / ||c_i - c_j||

    A pair with ``||c_i - c_j|| = 0`` is skipped, and the index is 0 when every spread or every
    distance is 0 (as scikit-learn's ``davies_bouldin_score``).

    Raises:
        PGDLError: fewer than two clusters.

    References:
        D. L. Davies, D. W. Bouldin. "A cluster separation measure", IEEE TPAMI 1(2), 1979.
    """
    centroids = np.asarray(centroids, np.float64)
    spreads = np.asarray(spreads, np.float64)
    if len(centroids) < 2:
        raise PGDLError("the Davies-Bouldin index needs at least two classes among the examples, "
                        f"found {len(centroids)}")
    gaps = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=2)
    if np.allclose(spreads, 0) or np.allclose(gaps, 0):
        return 0.0
    gaps[gaps == 0] = np.inf
    ratios = (spreads[:, None] + spreads[None, :]) / gaps
    np.fill_diagonal(ratios, -np.inf)
    return float(np.mean(ratios.max(axis=1)))


def class_statistics(features_of_class) -> tuple[np.ndarray, np.ndarray]:
    """Centroids and spreads of clusters given one at a time (so only one class's
    representations are in memory: a first layer's maps of 500 CIFAR images are 130 MB).

    Args:
        features_of_class: an iterable of ``[n_c, ...]`` arrays, one per cluster.

    Returns:
        ``(centroids [k, d], spreads [k])`` in float64.
    """
    centroids, spreads = [], []
    for h in features_of_class:
        h = np.asarray(h, np.float64).reshape(len(h), -1)
        centre = h.mean(axis=0)
        centroids.append(centre)
        spreads.append(float(np.mean(np.linalg.norm(h - centre, axis=1))))
    if not centroids:
        raise PGDLError("the Davies-Bouldin index needs at least two classes among the examples, found 0")
    return np.stack(centroids), np.asarray(spreads)


def davies_bouldin(features: np.ndarray, labels: np.ndarray) -> float:
    """The Davies-Bouldin index of `features` ``[n, ...]`` clustered by `labels` (see
    :func:`davies_bouldin_from_stats`)."""
    x = np.asarray(features, np.float64).reshape(len(features), -1)
    labels = np.asarray(labels)
    return davies_bouldin_from_stats(*class_statistics(x[labels == c] for c in np.unique(labels)))


def within_class_mixup(x: np.ndarray, y: np.ndarray, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Mix every example with a random partner of its own class: ``lam x_i + (1 - lam) x_p(i)``.

    The partners are a random permutation within each class (an example of a class with one
    example is its own partner, so it is unchanged). The label of every mixed example is its
    class, so the model should classify it as that class.
    """
    x = np.asarray(x, np.float32)
    partner = np.arange(len(y))
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        partner[members] = rng.permutation(members)
    return (lam * x + (1.0 - lam) * x[partner]).astype(np.float32)


def margin_percentile(model, x: np.ndarray, y: np.ndarray, percentile: float, batch_size: int) -> float:
    """The `percentile`-th percentile of the output margins of `model` on ``(x, y)``."""
    margins = output_margins(logits(model, x, batch_size), y)
    return float(np.percentile(margins, percentile))


# ----------------------------------------------------------------------------- the winners' sampling

def pooled_representation_model(model, layer: int, pool_size: int):
    """Like :func:`representation_model`, but an image-shaped output ``[h, w, c]`` is max-pooled
    first: windows of ``p x p`` with stride ``p``, no padding, ``p = min(pool_size, h, w)``
    (Natekar & Sharma pool the first layer's maps 4x4 before clustering them,
    ``complexitymeasures.py``, ``complexityDB``, ``pool=True``). Other outputs, and
    ``pool_size`` 1, are only flattened.

    Raises:
        PGDLError: `layer` is out of range, or the model is not a chain of layers.
    """
    import keras

    plain = representation_model(model, layer)  # checks `layer`; the result when nothing is pooled
    if pool_size <= 1:
        return plain
    parts = model_graph.logit_layers(model)
    index = layer % len(parts.layers)

    def build():
        x, h = layers_upto(model, parts, index)
        if len(h.shape) == 4:
            size = max(1, min(int(pool_size), int(h.shape[1]), int(h.shape[2])))
            h = keras.layers.MaxPooling2D(pool_size=(size, size), strides=(size, size), padding="valid")(h)
        if len(h.shape) > 2:
            h = keras.ops.reshape(h, (-1, math.prod(h.shape[1:])))
        return keras.Model(x, h, name=f"{model.name}_layer_{index}_pool_{pool_size}")

    return cached(model, ("pooled_representation_model", index, int(pool_size)), build, backend="any")


def cycled_examples(dataset, count: int, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` training examples in dataset order, starting over from the first one
    when the data has fewer (as ``dataset.repeat(-1)`` reads it), as ``(x float32, y int64)``."""
    x, y = first_examples(dataset, count, batch_size)
    if len(x) < count:
        rows = np.arange(count) % len(x)
        x, y = x[rows], y[rows]
    return x, y


def pairwise_mixtures(x: np.ndarray, lam: float) -> np.ndarray:
    """Every pair ``i < j`` of the examples `x`, mixed: ``lam x_j + (1 - lam) x_i``, pairs in
    row-major order of ``(i, j)`` (``n (n - 1) / 2`` mixtures; none when ``n < 2``)."""
    x = np.asarray(x, np.float32)
    i, j = np.triu_indices(len(x), 1)
    return (lam * x[j] + (1.0 - lam) * x[i]).astype(np.float32)


def shuffle_buffer_order(n: int, count: int, buffer: int, rng: np.random.Generator) -> np.ndarray:
    """Which of `n` examples a shuffle buffer of `buffer` over the repeated set yields first,
    `count` of them: the buffer holds the stream ``0, 1, ..., n - 1, 0, 1, ...``; each output is a
    uniformly drawn slot of it, refilled with the stream's next example (what
    ``tf.data.Dataset.repeat(-1).shuffle(buffer)`` does, with NumPy's generator: the same law,
    not TensorFlow's draws). Early examples of the set come out a little more often than late
    ones, as there.

    Returns:
        int64 indices into the set, ``[count]``.
    """
    slots = np.arange(buffer, dtype=np.int64) % n
    picks = rng.integers(0, buffer, size=count)
    out = np.empty(count, np.int64)
    following = buffer
    for k, slot in enumerate(picks):
        out[k] = slots[slot]
        slots[slot] = following % n
        following += 1
    return out


def shuffled_examples(dataset, count: int, buffer: int, rng: np.random.Generator,
                      batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """`count` training examples in the order a shuffle buffer of `buffer` over the repeated
    training set yields them (:func:`shuffle_buffer_order`), as ``(x float32, y int64)``; reads at
    most the first ``buffer + count`` examples."""
    x, y = first_examples(dataset, buffer + count, batch_size)
    rows = shuffle_buffer_order(len(x), count, buffer, rng)
    return x[rows], y[rows]
