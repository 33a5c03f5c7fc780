"""The PGDL winners' normalised margin distribution (Natekar & Sharma): output margins divided
by the norm of their gradient with respect to a layer's representations and by the spread of
those representations, the streams of examples it is computed on, and its summaries.

As the authors' ``computecomplexityfinal.py`` (``CustomComplexityFinal.computeMargins``,
``distancefromMargin``, ``batchMixupLabelwise``) and ``complexitymeasures.py``
(``complexityMargin``, ``complexity_but_simple``) compute it; the gradients come from
:func:`pgdl_measures.autodiff.input_jacobian_sq_sums`, the math is NumPy (float64).
"""

from __future__ import annotations

import numpy as np

from pgdl_measures.autodiff import cached, input_jacobian_sq_sums, model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _representations as rep

#: added to a denominator, as the authors do, so that a zero gradient or spread gives a finite value
EPS = 1e-7
#: the fraction of the smallest and of the largest feature variances the spread leaves out
TRIM = 0.05


def first_weighted_layer(model) -> int:
    """The index, in the model's chain up to its logits, of its first layer with filters or
    units (Conv*, Dense): the authors' margin layer."""
    for index, layer in enumerate(model_graph.logit_layers(model).layers):
        config = layer.get_config() if hasattr(layer, "get_config") else {}
        if "filters" in config or "units" in config:
            return index
    raise PGDLError(f"model {model.name!r} has no convolution or dense layer")


def _split_models(model, index: int):
    """``(head, difference)``: `head` maps inputs to layer `index`'s output (unflattened);
    `difference` maps ``(h, e)`` to ``sum_c f_rest(h)_c e_c`` ``[batch, 1]``, with ``f_rest`` the
    layers after `index` up to the logits."""
    import keras

    parts = model_graph.logit_layers(model)

    def build():
        x, h = rep.layers_upto(model, parts, index)
        head = keras.Model(x, h, name=f"{model.name}_head_{index}")
        h_in = keras.Input(shape=tuple(h.shape[1:]))
        z = h_in
        for item in parts.layers[index + 1:]:
            z = item(z)
        e = keras.Input(shape=tuple(z.shape[1:]))
        out = keras.ops.sum(z * e, axis=1, keepdims=True)
        return head, keras.Model([h_in, e], out, name=f"{model.name}_margin_{index}")

    return cached(model, ("winners_margin_models", index), build, backend="any")


def margin_classes(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two classes ``(a, b)`` whose logits the authors' margin compares: the top two when
    the top class is the label, else the label and the top class (a negative margin)."""
    order = np.argsort(-np.asarray(z, np.float64), axis=1, kind="stable")
    top1, top2 = order[:, 0], order[:, 1]
    correct = top1 == y
    return np.where(correct, top1, y), np.where(correct, top2, top1)


def trimmed_mean(values: np.ndarray, cut: float = TRIM) -> float:
    """The mean of `values` without the ``int(cut n)`` smallest and largest (as SciPy's ``trim_mean``)."""
    values = np.sort(np.asarray(values, np.float64).reshape(-1))
    k = int(cut * len(values))
    return float(np.mean(values[k:len(values) - k]))


def normalized_margins(model, x: np.ndarray, y: np.ndarray, layer: int, batch_size: int) -> np.ndarray:
    """Natekar & Sharma's normalised margins of `model` on ``(x, y)`` at layer `layer`::

        g_i = (z_a - z_b) / (||d(z_a - z_b)/dh(x_i)||_2 + EPS) / (sigma + EPS)
        sigma = sqrt(trimmed mean over the features of their variance over the examples)

    with ``(a, b)`` from :func:`margin_classes`, ``h`` layer `layer`'s output (inference mode)
    and the variance the population variance over all of `x`, the trimmed mean leaving out
    ``TRIM`` of the features at each end.

    Returns:
        float64 array ``[n]``.
    """
    parts = model_graph.logit_layers(model)
    index = layer % len(parts.layers)
    head, difference = _split_models(model, index)
    classes = int(rep.logits(model, x[:1], 1).shape[1])
    margins = np.empty(len(x), np.float64)
    total = total_sq = None
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        h = rep.predict(head, xb, batch_size)
        z = rep.logits(model, xb, batch_size)
        a, b = margin_classes(z, yb)
        rows = np.arange(len(xb))
        e = np.zeros((len(xb), classes), np.float32)
        e[rows, a] += 1.0
        e[rows, b] -= 1.0
        grad_norm = np.sqrt(input_jacobian_sq_sums(difference, [h, e])[:, 0])
        margins[start:start + len(xb)] = (z[rows, a].astype(np.float64) - z[rows, b]) / (grad_norm + EPS)
        flat = h.reshape(len(h), -1).astype(np.float64)
        total = flat.sum(axis=0) if total is None else total + flat.sum(axis=0)
        total_sq = (flat ** 2).sum(axis=0) if total_sq is None else total_sq + (flat ** 2).sum(axis=0)
    mean = total / len(x)
    variances = np.maximum(total_sq / len(x) - mean ** 2, 0.0)
    return margins / (np.sqrt(trimmed_mean(variances)) + EPS)


def tukey_summary(d: np.ndarray) -> np.ndarray:
    """``[f_l, q1, q2, q3, f_u]``: the quartiles and, outside the fences ``q1 - 1.5 IQR`` and
    ``q3 + 1.5 IQR``, the outlier nearest each fence (the extreme value when there is none), as
    the authors' ``computeQuantiles``."""
    d = np.asarray(d, np.float64)
    q1, q2, q3 = np.percentile(d, 25), np.percentile(d, 50), np.percentile(d, 75)
    iqr = q3 - q1
    low, high = d[d < q1 - 1.5 * iqr], d[d > q3 + 1.5 * iqr]
    f_l = np.max(low) if low.size else np.min(d)
    f_u = np.min(high) if high.size else np.max(d)
    return np.array([f_l, q1, q2, q3, f_u])


def labelwise_mixup_batch(x: np.ndarray, y: np.ndarray, lam: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The authors' label-wise mixup of one batch (``batchMixupLabelwise``): for each class
    ``k`` with ``n_k >= 2`` examples, ``n_k`` mixtures drawn with replacement from its pairwise
    mixtures (:func:`~pgdl_measures.measures._representations.pairwise_mixtures`), the draws
    from NumPy's legacy generator seeded with `seed` afresh for the batch, classes in order;
    a class with one example keeps it unmixed. Returns ``(mixtures, labels)``, grouped by class."""
    random = np.random.RandomState(seed)
    xs, ys = [], []
    for k in range(int(np.max(y)) + 1):
        members = x[y == k]
        if len(members) >= 2:
            pairs = rep.pairwise_mixtures(members, lam)
            members = pairs[random.randint(0, len(pairs), size=len(members))]
        xs.append(members)
        ys.append(np.full(len(members), k, np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)
