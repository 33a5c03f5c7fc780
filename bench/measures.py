"""Benchmark the measures on a PGDL-style VGG with synthetic data; prints JSON.

The model (the largest VGG shape of the PGDL tasks): 32x32x3 inputs, three blocks of
conv3x3-ReLU, conv3x3-ReLU, 2x2 max-pool with 64,64 / 128,128 / 256,512 filters ("same"
padding), Flatten (4x4x512 = 8192), Dense 128 ReLU, Dense 128 ReLU, Dense 10 logits:
about 2.8 M parameters. Data: N random normal images with random labels in an in-memory
ArrayDataset (no TFRecords, so this runs with JAX and no TensorFlow installed).

Figures, each measured side by side in one run (best of `--repeats` timed runs after an
untimed warm-up that compiles):

(a) ``agn_vs_inference``: seconds of AGN on N examples / seconds of one plain inference pass
    (``model.predict_on_batch``) over the same batches (target <= 1.3), the two timed
    alternately `--repeats` times; the ratio of the best times and the median ratio of pairs;
(b) ``gradient_norm_vectorized_vs_loop``: seconds per example of the per-example gradient
    loop / of the vectorized version (target >= 10 on CPU), for two references: the compiled
    loop (one ``tf.function``/``jax.jit`` single-example gradient per example, the library's
    reference) and the op-by-op loop (eager tape / un-jitted ``jax.grad``); on the VGG and on
    a small MLP (3072-512-512-10); ``method`` is what the vectorized call used (``layerwise``:
    one batched backward pass and per-layer norms; ``vmap``: vectorized per-example gradients),
    and the vmap method is timed too (``vmap_seconds_per_example``); and the largest relative
    difference of the values. Two floors are timed beside them, over the same batches: one
    batched gradient of the summed loss (``batched_gradient_seconds_per_example``: the forward
    and backward pass any exact per-example method needs) and one plain inference pass
    (``inference_seconds_per_example``); ``compiled_loop_over_inference`` bounds the speedup
    over the compiled loop that any method doing at least one forward pass can reach;
(c) ``measures``: for every registered measure with its default parameters (agn and
    gradient_norm read all N examples), the first call on the model (compilation included,
    which every new model pays) and a second, warm call; extrapolated to 50,000 training
    examples as ``(first - warm) + warm * examples_read(50000) / examples_read(N)``, where
    ``examples_read`` honours a measure's own cap (``max_examples``, or
    ``num_batches x batch_size``); the measures in :data:`FIXED_WORK` are not scaled (with
    ``--examples 50000`` nothing is extrapolated). A measure that fails is reported with its
    error.

    python bench/measures.py [--examples 512] [--backend jax] [--measures agn,jacobian_norm]
                             [--only gradient_norm] [--out report.json]

``--backend`` sets ``KERAS_BACKEND`` (it must come before Keras is imported, as here). On a GPU
use ``--examples 50000`` for the true 50,000 figure (``bench/device_jax.sh`` is that run, prepared
for the device machine). With ``--out`` the report is also written to a file after every part
and every measure, ``"complete": true`` once all ran. Every part runs inside
:func:`pgdl_measures.autodiff.full_float32`, as measures do (``float32_mode`` in the report).
``tensorflow_imported`` in the output says
whether TensorFlow ended up imported; with ``--backend jax`` it can be true only because Keras
itself imports TensorFlow when it is installed (e.g. ``Layer.get_config`` checks
``tf.available``); where TensorFlow is not installed nothing here needs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
import warnings

import numpy as np

FULL_TRAIN_SET = 50_000
VGG_FILTERS = ((64, 64), (128, 128), (256, 512))
VGG_DENSE = (128, 128)
NUM_CLASSES = 10


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=512, help="training examples N (default 512)")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default=None,
                        help="the Keras backend (sets KERAS_BACKEND; default: the environment's)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size of agn and of the inference pass")
    parser.add_argument("--grad-batch-size", type=int, default=32, help="batch size of vectorized gradient_norm")
    parser.add_argument("--loop-examples", type=int, default=16,
                        help="examples timed in the compiled per-example loop (a quarter in the op-by-op loop)")
    parser.add_argument("--measures", default=None, help="comma-separated measures for (c) (default: all registered)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of (a) and (b); the best is kept")
    parser.add_argument("--skip-all-measures", action="store_true", help="skip (c)")
    parser.add_argument("--out", default=None,
                        help="also write the JSON report to this file, rewritten after every part and every "
                             "measure (a run cut short keeps what it measured)")
    parser.add_argument("--only", default=None,
                        help="comma-separated parts to run among agn, gradient_norm, measures (default: all)")
    return parser.parse_args()


def init_weights(model, seed: int) -> list[np.ndarray]:
    """He-normal kernels and zero biases from numpy (the same weights on every backend)."""
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.get_weights():
        fan_in = int(np.prod(w.shape[:-1])) if w.ndim > 1 else 0
        weights.append((rng.normal(0, np.sqrt(2 / fan_in), w.shape) if fan_in else np.zeros(w.shape)).astype(np.float32))
    return weights


def build_mlp():
    """A small fully-connected model: 32x32x3 -> flatten -> 512 -> 512 -> 10 (ReLU)."""
    import keras

    L = keras.layers
    return keras.Sequential([keras.Input((32, 32, 3)), L.Flatten(), L.Dense(512, activation="relu"),
                             L.Dense(512, activation="relu"), L.Dense(NUM_CLASSES)], name="mlp_bench")


def build_vgg():
    """The benchmark VGG (see the module docstring), built with Keras."""
    import keras

    L = keras.layers
    layers = []
    for block in VGG_FILTERS:
        for filters in block:
            layers.append(L.Conv2D(filters, 3, padding="same", activation="relu"))
        layers.append(L.MaxPooling2D(2))
    layers.append(L.Flatten())
    layers += [L.Dense(units, activation="relu") for units in VGG_DENSE]
    layers.append(L.Dense(NUM_CLASSES))
    return keras.Sequential([keras.Input((32, 32, 3))] + layers, name="vgg_bench")


def _best(fn, repeats: int) -> float:
    fn()  # warm-up: compiles
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _device() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return f"jax {device.platform}: {getattr(device, 'device_kind', device)}"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"tensorflow {'gpu: ' + ', '.join(g.name for g in gpus) if gpus else 'cpu'}"


#: measures whose work does not grow with the training set: a fixed number of SGD steps and
#: accuracy batches drawn from a stream over it (what they read grows with the steps, not the set)
FIXED_WORK = frozenset({"sharpness_pgdl_v1", "sharpness_pgdl_v2"})


def examples_read(measure, n: int) -> int:
    """How many training examples `measure` reads from a dataset of `n` (its own cap applied)."""
    if not measure.needs_train_data or measure.name in FIXED_WORK:
        return 0
    params = measure.params
    cap = None
    if params.get("num_batches") is not None and params.get("batch_size") is not None:
        cap = int(params["num_batches"]) * int(params["batch_size"])
    elif params.get("max_examples") is not None:
        cap = int(params["max_examples"])
    elif params.get("examples_per_class") is not None:  # class-balanced samples (the published measures)
        cap = int(params["examples_per_class"]) * NUM_CLASSES
    return n if cap is None else min(n, cap)


def bench_agn(trained, batch_size: int, repeats: int) -> dict:
    """AGN vs a plain inference pass over the same batches, timed alternately (best of each)."""
    from pgdl_measures.measures.agn import AGN

    model, data = trained.model, trained.train
    agn = AGN(batch_size=batch_size)

    def inference():
        for x, _ in data.batches(batch_size):
            model.predict_on_batch(x)

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    inference(), agn(trained)  # warm-up: compiles both
    t_inference, t_agn = [], []
    for _ in range(max(1, repeats)):
        t_inference.append(timed(inference))
        t_agn.append(timed(lambda: agn(trained)))
    return {"batch_size": batch_size, "repeats": len(t_agn), "inference_seconds": min(t_inference),
            "agn_seconds": min(t_agn), "ratio": min(t_agn) / min(t_inference),
            "median_ratio_of_pairs": float(np.median(np.array(t_agn) / np.array(t_inference))),
            "target": "<= 1.3"}


def _batched_gradient_fn(model):
    """``f(x, y)``: the gradient of the batch-summed loss w.r.t. every trainable weight, compiled
    (one batched forward and backward pass: what any exact per-example method must at least do)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        def loss(trainable, frozen, x, y):
            logits, _ = model.stateless_call(trainable, frozen, x, training=False)
            return keras.ops.sum(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))

        grad = jax.jit(jax.grad(loss))

        def run(x, y):
            return jax.block_until_ready(grad([v.value for v in model.trainable_variables],
                                              [v.value for v in model.non_trainable_variables], x, y))

        return run
    import tensorflow as tf

    @tf.function
    def grad(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=False)
            loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
        return tape.gradient(loss, model.trainable_variables)

    return lambda x, y: [g.numpy() for g in grad(tf.constant(x), tf.constant(y))]


def bench_gradient_norm(model, x, y, batch_size: int, loop_examples: int, repeats: int) -> dict:
    """Per-example gradient norms: vectorized vs a compiled loop vs an op-by-op loop."""
    from pgdl_measures import autodiff

    x, y = x[:2 * batch_size], y[:2 * batch_size]
    xs, ys = x[:loop_examples], y[:loop_examples]
    few = max(2, loop_examples // 4)

    def vectorized(method="auto"):
        return np.concatenate([autodiff.per_example_grad_sq_norms(model, x[i:i + batch_size], y[i:i + batch_size],
                                                                 method=method)
                               for i in range(0, len(x), batch_size)])

    method = autodiff.grad_sq_norms_method(model)
    t_vec = _best(vectorized, repeats) / len(x)
    t_vmap = _best(lambda: vectorized("vmap"), repeats) / len(x) if method != "vmap" else t_vec
    t_loop = _best(lambda: autodiff.per_example_grad_sq_norms_loop(model, xs, ys), repeats) / len(xs)
    t_eager = _best(lambda: autodiff.per_example_grad_sq_norms_loop(model, xs[:few], ys[:few], compiled=False), 1) / few
    gradient = _batched_gradient_fn(model)
    t_grad = _best(lambda: [gradient(x[i:i + batch_size], y[i:i + batch_size])
                            for i in range(0, len(x), batch_size)], repeats) / len(x)
    t_forward = _best(lambda: [model.predict_on_batch(x[i:i + batch_size])
                               for i in range(0, len(x), batch_size)], repeats) / len(x)
    fast = vectorized()[:loop_examples]
    slow = autodiff.per_example_grad_sq_norms_loop(model, xs, ys)
    return {"parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
            "method": method,
            "vectorized_examples": len(x), "vectorized_batch_size": batch_size,
            "loop_examples": len(xs), "op_by_op_loop_examples": few,
            "vectorized_seconds_per_example": t_vec,
            "compiled_loop_seconds_per_example": t_loop,
            "op_by_op_loop_seconds_per_example": t_eager,
            "vmap_seconds_per_example": t_vmap,
            "batched_gradient_seconds_per_example": t_grad,
            "inference_seconds_per_example": t_forward,
            "vectorized_over_batched_gradient": t_vec / t_grad,
            "compiled_loop_over_inference": t_loop / t_forward,
            "speedup_vs_compiled_loop": t_loop / t_vec,
            "speedup_vs_op_by_op_loop": t_eager / t_vec,
            "speedup_vs_vmap": t_vmap / t_vec,
            "max_relative_difference": float(np.max(np.abs(fast - slow) / np.abs(slow))),
            "target": ">= 10"}


def bench_all_measures(trained, n: int, names: list[str] | None, done=lambda results: None) -> dict:
    """Every measure (or `names`), one entry each; ``done(results)`` after each measure."""
    from pgdl_measures.registry import available_measures

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        measures = available_measures()
    results = {}
    for name in names or list(measures):
        if name not in measures:
            results[name] = {"error": "not registered (module missing or failed to import)"}
            continue
        entry: dict = {}
        try:
            measure = measures[name]()
            entry["params"] = measure.params
            start = time.perf_counter()
            entry["value"] = measure(trained)
            first = time.perf_counter() - start
            start = time.perf_counter()
            measure(trained)
            warm = time.perf_counter() - start
            read_n, read_full = examples_read(measure, n), examples_read(measure, FULL_TRAIN_SET)
            scale = read_full / read_n if read_n else 1.0
            entry.update({
                "seconds_first_call": first,
                "seconds_warm": warm,
                "examples_read": read_n if name not in FIXED_WORK else "a fixed number of batches (not scaled)",
                "examples_read_at_50000": read_full,
                "extrapolated_seconds_50000": max(first - warm, 0.0) + warm * scale,
            })
        except Exception as exc:  # noqa: BLE001 - a failing measure is reported, not fatal
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback_tail"] = traceback.format_exc().splitlines()[-3:]
        results[name] = entry
        done(results)
        print(f"# {name}: {entry.get('seconds_first_call', entry.get('error'))}", file=sys.stderr, flush=True)
    return results


def main() -> None:
    args = _parse_args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras

    from pgdl_measures import autodiff
    from pgdl_measures.tasks import TrainedModel
    from pgdl_measures.tasks.data import ArrayDataset

    model = build_vgg()
    initial = init_weights(model, 1)
    model.set_weights(init_weights(model, 0))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.examples, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, args.examples)
    trained = TrainedModel("model_vgg", model, initial, ArrayDataset(x, y), task="bench")

    report: dict = {
        "backend": keras.backend.backend(),
        "device": _device(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "model": {
            "architecture": "32x32x3 -> [conv3x3 64, 64, pool] [128, 128, pool] [256, 512, pool] -> flatten 8192 "
                            "-> dense 128 -> dense 128 -> dense 10 (ReLU, 'same' padding)",
            "parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        },
        "examples": args.examples,
        "float32_mode": autodiff.float32_mode(),
    }

    def emit() -> None:
        if args.out:
            report["tensorflow_imported"] = "tensorflow" in sys.modules
            from scoring.files import atomic_write

            atomic_write(args.out, json.dumps(report, indent=2, default=str))

    emit()
    # Every part in the mode measures run in (true float32 unless PGDL_ALLOW_TF32 is set), so the
    # plain passes they are compared with compute at the same precision.
    with autodiff.full_float32():
        parts = set(args.only.split(",")) if args.only else {"agn", "gradient_norm", "measures"}
        if "agn" in parts:
            print("# (a) agn vs inference", file=sys.stderr, flush=True)
            report["agn_vs_inference"] = bench_agn(trained, args.batch_size, args.repeats)
            emit()
        if "gradient_norm" in parts:
            print("# (b) gradient_norm vectorized vs loop", file=sys.stderr, flush=True)
            mlp = build_mlp()
            mlp.set_weights(init_weights(mlp, 0))
            report["gradient_norm_vectorized_vs_loop"] = {
                "vgg": bench_gradient_norm(model, x, y, args.grad_batch_size, args.loop_examples, args.repeats),
                "mlp_3072_512_512_10": bench_gradient_norm(mlp, x, y, args.grad_batch_size, 4 * args.loop_examples,
                                                           args.repeats),
            }
            emit()
        if "measures" in parts and not args.skip_all_measures:
            print("# (c) every measure", file=sys.stderr, flush=True)
            names = args.measures.split(",") if args.measures else None
            report["measures"] = {}

            def measured(results: dict) -> None:
                report["measures"] = results
                emit()

            report["measures"] = bench_all_measures(trained, args.examples, names, measured)
    report["complete"] = True
    emit()
    report["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
