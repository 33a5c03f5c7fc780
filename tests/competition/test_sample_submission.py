"""sample_submission/: a complete competition submission computing AGN.

It must run where the toolkit is not installed: TensorFlow and NumPy only. Its value on the
official sample task is checked against a NumPy computation from the weight files.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from test_run_submission import numpy_forward, toy_train

SAMPLE = Path(__file__).resolve().parents[2] / "sample_submission"


def numpy_agn(model_dir: Path, x: np.ndarray, y: np.ndarray) -> float:
    """mean_i (||h_i||^2 + 1) * ||softmax(z_i) - onehot(y_i)||^2, h the last Dense's input."""
    outs = numpy_forward(model_dir, x)
    h, z = outs[-2], outs[-1]  # the toy models' last Dense has no activation: z = logits
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    residual = p - np.eye(z.shape[1])[y]
    return float(np.mean((np.sum(h ** 2, axis=1) + 1) * np.sum(residual ** 2, axis=1)))


def test_sample_submission_is_complete_and_self_contained():
    assert (SAMPLE / "metadata").read_text().startswith("description:")
    tree = ast.parse((SAMPLE / "complexity.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"numpy", "tensorflow"}, imported
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert [a.arg for a in functions["complexity"].args.args][:2] == ["model", "dataset"]


def test_sample_submission_agn_on_the_toy_task(tmp_path, cli, toy_path):
    result = cli(["run-submission", str(SAMPLE), str(toy_path), str(tmp_path),
                  "--models", "model_0,model_1", "--reuse-process"])
    assert result.exit_code == 0, result.output
    values = json.loads((tmp_path / "pgdl_toy_data.predict").read_text())
    x, y = toy_train(toy_path)
    for model_id in ("model_0", "model_1"):
        assert values[model_id] == pytest.approx(numpy_agn(toy_path / model_id, x, y), rel=1e-5)


def test_agn_reads_logits_through_a_softmax_last_layer():
    """A last Dense with softmax activation: AGN still uses its logits (needs TensorFlow)."""
    tf = pytest.importorskip("tensorflow")
    import importlib.util

    spec = importlib.util.spec_from_file_location("sample_complexity", SAMPLE / "complexity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=40).astype(np.int32)
    k1, b1 = rng.normal(size=(3, 5)), rng.normal(size=5)
    k2, b2 = rng.normal(size=(5, 2)), rng.normal(size=2)
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(5, activation="relu"),
                                 tf.keras.layers.Dense(2, activation="softmax")])
    model.set_weights([k1, b1, k2, b2])
    value = module.complexity(model, tf.data.Dataset.from_tensor_slices((x, y)))

    h = np.maximum(x @ k1 + b1, 0)
    z = h @ k2 + b2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = np.mean((np.sum(h ** 2, axis=1) + 1) * np.sum((p - np.eye(2)[y]) ** 2, axis=1))
    assert value == pytest.approx(expected, rel=1e-4)
