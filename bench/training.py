"""Benchmark of the training module: tracker overheads and Keras fit against a plain loop (JSON).

Measured side by side in one run, on one model and one synthetic dataset (CIFAR-size by default),
each figure the best of the timed epochs after a first (compiling) one:

(a) online AGN: seconds per ``fit`` epoch with the online-AGN metric over without it
    (goal: at most 1.03); the two fits alternate ``--repeats`` times (plain, online, plain,
    ...), each a fresh model whose first epoch compiles and is not timed; reported: the ratio
    of the best epochs over all repeats and the median of the repeats' ratios of best epochs;
(b) exact AGN: seconds of the end-of-epoch ``agn`` tracker over the training set, in units of
    one inference pass over the training set (``predict_on_batch`` over the same batches;
    goal: at most 1.3);
(c) ``fit`` against a plain compiled training loop (the same model, loss, SGD with momentum and
    batches; JAX: ``jax.jit`` of a step over ``model.stateless_call``; TensorFlow: a
    ``tf.function`` step with a tape), for ``steps_per_execution`` 1 and 16, with the arrays
    handed to ``fit`` (Keras's own batching) and with the seeded, resumable
    ``EpochBatches`` pipeline of :func:`pgdl_measures.training.fit.train` (goal: within 1.3x).

Usage::

    python bench/training.py [--backend jax] [--model vgg] [--examples 10240] [--epochs 3] [--repeats 3]
                             [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help="KERAS_BACKEND (default: as set)")
    p.add_argument("--model", default="vgg", help="a training.models name (default vgg: a small PGDL VGG)")
    p.add_argument("--examples", type=int, default=2048, help="training examples (default 2048)")
    p.add_argument("--shape", default="32,32,3", help="input shape (default 32,32,3)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3, help="epochs per timed fit (the first compiles; default 3)")
    p.add_argument("--repeats", type=int, default=3, help="alternating plain/online-AGN fits (default 3)")
    p.add_argument("--spe", default="1,16", help="steps_per_execution values (default 1,16)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    return p.parse_args()


def _model(name, data, seed=0):
    import keras

    from pgdl_measures.training.models import build

    keras.utils.set_random_seed(seed)
    options = {"depth": 3, "width": 32, "convs_per_block": 2} if name == "vgg" else {}
    return build(name, data.input_shape, data.num_classes, **options)


def _fit_epoch_seconds(name, data, *, epochs, batch_size, spe=1, shuffle="seeded", online_agn=False):
    from pgdl_measures.training.config import TrainConfig
    from pgdl_measures.training.fit import train

    model = _model(name, data)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=0.01, schedule="constant",
                         weight_decay=0.0, steps_per_execution=spe, shuffle=shuffle)
    result = train(model, data, config, online_agn=online_agn)
    return float(min(result.history["seconds"][1:] or result.history["seconds"])), model


def _plain_loop_epoch_seconds(name, data, *, epochs, batch_size):
    """A plain compiled training loop: SGD with momentum 0.9, lr 0.01, sparse cross-entropy."""
    import keras

    model = _model(name, data)
    x, y = data.x_train, data.y_train
    n = len(y) // batch_size * batch_size  # full batches: one compiled shape
    times = []
    if keras.backend.backend() == "jax":
        import jax
        import jax.numpy as jnp

        def loss_fn(tv, ntv, xb, yb):
            logits, ntv = model.stateless_call(tv, ntv, xb, training=True)
            logp = jax.nn.log_softmax(logits.astype(jnp.float32))
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1)), ntv

        @jax.jit
        def step(tv, ntv, mom, xb, yb):
            (loss, ntv), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv, ntv, xb, yb)
            mom = [0.9 * m - 0.01 * g for m, g in zip(mom, grads, strict=True)]
            tv = [v + m for v, m in zip(tv, mom, strict=True)]
            return tv, ntv, mom, loss

        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        mom = [jnp.zeros_like(v) for v in tv]
        for epoch in range(epochs):
            order = np.random.default_rng(epoch).permutation(len(y))[:n]
            start = time.perf_counter()
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                tv, ntv, mom, loss = step(tv, ntv, mom, x[idx], y[idx].astype(np.int32))
            loss.block_until_ready()
            times.append(time.perf_counter() - start)
    else:
        import tensorflow as tf

        opt = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function(jit_compile=False)
        def step(xb, yb):
            with tf.GradientTape() as tape:
                loss = ce(yb, model(xb, training=True))
            opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        for epoch in range(epochs):
            order = np.random.default_rng(epoch).permutation(len(y))[:n]
            start = time.perf_counter()
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                loss = step(x[idx], y[idx])
            float(loss)
            times.append(time.perf_counter() - start)
    return float(min(times[1:] or times))


def _inference_and_agn(model, data, batch_size, repeats=3):
    from pgdl_measures.training.trackers import ExactAGN

    x = data.x_train
    model.predict_on_batch(x[:batch_size])

    def inference():
        for i in range(0, len(x), batch_size):
            out = model.predict_on_batch(x[i:i + batch_size])
        np.asarray(out)

    tracker = ExactAGN(model, data.x_train, data.y_train, batch_size=batch_size)
    tracker.value()  # compile

    def best(fn):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    t_inf, t_agn = best(inference), best(tracker.value)
    return t_inf, t_agn


def main():
    args = _args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from pgdl_measures.training.datasets import prepare, synthetic

    shape = [int(d) for d in args.shape.split(",")]
    data = prepare(synthetic(train_size=args.examples, test_size=0 or 1, shape=shape), seed=0)
    data.x_test, data.y_test = data.x_test[:0], data.y_test[:0]
    bs, ep = args.batch_size, args.epochs

    plain_fits, online_fits = [], []
    for _ in range(max(1, args.repeats)):  # alternate, so that drifting load hits both alike
        seconds, model = _fit_epoch_seconds(args.model, data, epochs=ep, batch_size=bs)
        plain_fits.append(seconds)
        online_fits.append(_fit_epoch_seconds(args.model, data, epochs=ep, batch_size=bs, online_agn=True)[0])
    plain_fit, online_fit = min(plain_fits), min(online_fits)
    pair_ratios = sorted(o / p for o, p in zip(online_fits, plain_fits, strict=True))
    t_inf, t_agn = _inference_and_agn(model, data, bs)
    plain_loop = _plain_loop_epoch_seconds(args.model, data, epochs=ep, batch_size=bs)
    fits = {}
    for spe in (int(s) for s in args.spe.split(",")):
        for shuffle in ("keras", "seeded"):
            seconds, _ = _fit_epoch_seconds(args.model, data, epochs=ep, batch_size=bs, spe=spe, shuffle=shuffle)
            fits[f"spe{spe}_{'arrays' if shuffle == 'keras' else 'seeded_batches'}"] = {
                "fit_epoch_seconds": round(seconds, 4), "ratio_to_plain_loop": round(seconds / plain_loop, 3)}

    try:
        import jax

        device = str(jax.devices()[0]) if keras.backend.backend() == "jax" else platform.processor()
    except ImportError:
        device = platform.processor() or platform.machine()
    out = {
        "backend": keras.backend.backend(), "keras": keras.__version__, "device": device,
        "cpu_count": os.cpu_count(), "model": args.model, "parameters": int(model.count_params()),
        "examples": args.examples, "shape": shape, "batch_size": bs, "epochs_per_fit": ep,
        "online_agn": {"fit_epoch_seconds": round(plain_fit, 4), "with_online_agn_seconds": round(online_fit, 4),
                       "overhead_ratio": round(online_fit / plain_fit, 3),
                       "median_pair_ratio": round(float(np.median(pair_ratios)), 3),
                       "pair_ratios": [round(r, 3) for r in pair_ratios],
                       "plain_epoch_seconds_per_repeat": [round(t, 4) for t in plain_fits],
                       "online_epoch_seconds_per_repeat": [round(t, 4) for t in online_fits],
                       "goal": "<= 1.03"},
        "exact_agn": {"inference_pass_seconds": round(t_inf, 4), "agn_seconds": round(t_agn, 4),
                      "inference_passes": round(t_agn / t_inf, 3), "goal": "<= 1.3"},
        "fit_vs_plain_loop": {"plain_loop_epoch_seconds": round(plain_loop, 4), **fits, "goal": "<= 1.3"},
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
