"""Every JSON file the toolkit reads, fed malformed content of every kind (Hypothesis).

Each reader either accepts the content or raises exactly one :class:`PGDLError` whose message
names the file; any other exception type is a bug. The kinds of malformed content: arbitrary
bytes, arbitrary JSON values, texts Python's parser trips on (integers over 4,300 digits, deep
nesting, numbers too large for a float, ``NaN``/``Infinity``, non-UTF-8), and a valid document
with one field replaced by a value of another type (a list where a string or an object is
expected, an object where a list is, a huge number, null...).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.errors import PGDLError

SETTINGS = settings(max_examples=int(__import__("os").environ.get("PGDL_HYPOTHESIS_EXAMPLES", 60)), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# ----------------------------------------------------------------------------- valid documents

CONFIG = {"model_config": [{"layer_name": "Flatten"},
                           {"layer_name": "Dense", "units": 4, "activation": "relu"},
                           {"layer_name": "Dense", "units": 3}],
          "input_shape": [2, 2, 1]}

MODEL_CONFIGS = {
    str(k): {"hparams": {"depth": {"possible_values": [1, 2], "current_value": 1 + k // 2},
                         "act": {"possible_values": ["relu", "tanh"],
                                 "current_value": ["relu", "tanh"][k % 2]}},
             "metrics": {"train_acc": 1.0, "test_acc": 0.9 - 0.01 * k}}
    for k in range(4)
}

PREDICTION = {f"model_{k}": 0.5 * k for k in range(4)}

SPEC = {"task": "t", "seed": 0, "dataset": {"name": "digits", "train_size": 20},
        "architecture": "mlp", "grid": {"depth": [1, 2], "width": [4]},
        "fixed": {"epochs": 1}}

SEARCH_SPEC = {
    "name": "ci", "algorithms": ["random", "bohb"], "objectives": ["val_loss", "agn_val_loss"], "alphas": [0.1],
    "space": {"batch_size": {"low": 32, "high": 1000, "int": True}, "learning_rate": {"low": 1e-07, "high": 0.5,
                                                                                      "log": True}},
    "start": {"batch_size": 100, "learning_rate": 0.01, "momentum": 0.6, "weight_decay": 0.0005},
    "default": {"batch_size": 128, "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.0001},
    "epochs": 8, "budget": 128, "round_size": 8, "bohb": {"eta": 2, "min_epochs": 2},
    "data": {"dataset": "digits", "options": {}, "train_fraction": 0.5, "validation": 0.25, "seed": 0},
    "model": {"name": "vgg", "options": {"depth": 2, "width": 8}}, "final_seeds": [0, 1, 2], "seed": 0,
    "trainer": "keras", "agn": "online", "diverge_loss": 10000.0}

RECORD = {"hparams": {"depth": 1, "width": 4}, "metrics": {"train_acc": 1.0, "test_acc": 0.5}}

# ----------------------------------------------------------------------------- readers


def _read_config(path: Path):
    from pgdl_measures.tasks.model_config import read_config

    return read_config(path)


def _read_model_configs_for_score(path: Path):
    from scoring.predictions import check_grid, load_model_specs, scoring_grid

    grid = scoring_grid(load_model_specs(path), path)
    check_grid(grid)
    return grid


def _read_model_configs_for_tasks(path: Path):
    from pgdl_measures.tasks.task import grid_report, read_model_configs

    return grid_report(read_model_configs(path)).problems()


def _read_prediction(path: Path):
    from scoring.predictions import load_prediction

    return load_prediction(path)


def _read_spec(path: Path):
    from pgdl_measures.zoo.spec import load_spec

    return load_spec(path)


def _zoo_writer(path: Path):
    from pgdl_measures.zoo.writer import TaskWriter

    out = path.parent.parent.parent
    return TaskWriter(out, path.parent.name)


def _read_zoo_record(path: Path):
    writer = _zoo_writer(path)
    folder = writer.model_dir("0")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "weights.hdf5", "weights_init.hdf5"):
        (folder / name).touch()
    return writer.write_model_configs({"depth": [1, 2], "width": [4]})


def _read_zoo_state(path: Path):
    return _zoo_writer(path).prepare({"task": "t"}, "digest", None)


def _read_search_spec(path: Path):
    from pgdl_measures.search.spec import load_spec

    return load_spec(path)


#: name -> (the valid document, the file's name, the reader)
READERS = {
    "config.json": (CONFIG, "config.json", _read_config),
    "model_configs.json (score)": (MODEL_CONFIGS, "model_configs.json", _read_model_configs_for_score),
    "model_configs.json (task info)": (MODEL_CONFIGS, "model_configs.json", _read_model_configs_for_tasks),
    ".predict": (PREDICTION, "task.predict", _read_prediction),
    "zoo spec": (SPEC, "spec.json", _read_spec),
    "zoo model record": (RECORD, "model_0.json", _read_zoo_record),
    "zoo run record": ({"spec": {"task": "t"}, "data_sha256": "digest"}, "spec.json", _read_zoo_state),
    "search spec": (SEARCH_SPEC, "search.json", _read_search_spec),
}

# ----------------------------------------------------------------------------- malformed content

scalars = st.one_of(
    st.none(), st.booleans(), st.text(max_size=8),
    st.integers(), st.integers(min_value=10 ** 12, max_value=10 ** 400),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0, -1, 1.5, 1e308, "", "x"]),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)

PATHOLOGICAL = [
    b"1" * 5000,                                   # an integer over Python's 4,300-digit limit
    b'{"a": ' + b"7" * 4301 + b"}",
    b"[" * 100_000 + b"]" * 100_000,               # RecursionError in the parser
    b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    b"1e400", b'{"a": -1e999}', b"[1E400]",        # too large for a float
    b"NaN", b'{"a": Infinity}', b"[-Infinity]",    # not JSON
    b"\xff\xfe{}", b'{"a": "\xe9"}',               # not UTF-8
    b"\xef\xbb\xbf{}",                             # a UTF-8 byte-order mark
    b"", b"   ", b"{", b"nul", b'{"a": 1,}', b'{"a": 1} {"b": 2}',
    b"null", b"[]", b"{}", b"0", b'"text"', b"true",
]


def _paths(value, prefix=()):
    """Every path to a sub-value of a JSON document (the root included)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _replace(value, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


def _rename(value, path, new_key):
    """The document with the key at `path` renamed (or dropped when `new_key` is None)."""
    copy = json.loads(json.dumps(value))
    target = copy
    for key in path[:-1]:
        target = target[key]
    item = target.pop(path[-1])
    if new_key is not None:
        target[new_key] = item
    return copy


@st.composite
def malformed(draw, valid):
    """Bytes of a malformed file derived from the valid document `valid`."""
    kind = draw(st.sampled_from(["bytes", "value", "pathological", "replace", "replace", "replace",
                                 "rename"]))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    if kind == "value":
        return json.dumps(draw(json_values)).encode()
    if kind == "pathological":
        return draw(st.sampled_from(PATHOLOGICAL))
    paths = list(_paths(valid))
    if kind == "rename":
        keyed = [p for p in paths if p and isinstance(p[-1], str)]
        path = draw(st.sampled_from(keyed))
        return json.dumps(_rename(valid, path, draw(st.none() | st.text(max_size=6)))).encode()
    path = draw(st.sampled_from(paths))
    return json.dumps(_replace(valid, path, draw(json_values))).encode()


def _check(reader, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        reader(path)
    except PGDLError as exc:
        assert str(path) in str(exc) or (exc.path and Path(exc.path) in (path, path.parent)), (
            f"the error does not name the file: {exc}")
    # any other exception type propagates and fails the test


@pytest.mark.parametrize("name", list(READERS))
@SETTINGS
@given(data=st.data())
def test_malformed_json_gives_one_pgdl_error_naming_the_file(name, data):
    valid, filename, reader = READERS[name]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "zoo_state" / "t"
        folder.mkdir(parents=True)
        path = folder / filename
        path.write_text(json.dumps(valid))
        reader(path)  # the valid document is accepted
        _check(reader, path, data.draw(malformed(valid)))


@pytest.mark.parametrize("name", list(READERS))
@pytest.mark.parametrize("content", PATHOLOGICAL[:13], ids=lambda b: repr(b[:12]))
def test_pathological_texts_give_one_pgdl_error(name, content, tmp_path):
    _, filename, reader = READERS[name]
    folder = tmp_path / "zoo_state" / "t"
    folder.mkdir(parents=True)
    path = folder / filename
    path.write_bytes(content)
    with pytest.raises(PGDLError) as info:
        reader(path)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- building config.json


@pytest.fixture
def small_budget(monkeypatch):
    """A small weight budget, so no mutated config allocates much memory in the tests."""
    from pgdl_measures.tasks import model_config

    monkeypatch.setattr(model_config, "MAX_PARAMETERS", 100_000)


def _read_and_build(path: Path):
    from pgdl_measures.tasks.model_config import build_model, read_config

    return build_model(read_config(path), path)


@pytest.mark.parametrize("layers, input_shape", [
    ([{"layer_name": "Dense", "units": 10 ** 12}], [4]),          # cannot be allocated
    ([{"layer_name": "Dense", "units": 10 ** 400}], [4]),         # not even a float
    ([{"layer_name": "Dense", "units": 1e308}], [4]),
    ([{"layer_name": "Conv2D", "filters": 10 ** 9, "kernel_size": 3}], [8, 8, 3]),
    ([{"layer_name": "Dense", "units": [1, 2]}], [4]),            # a list where a number is expected
    ([{"layer_name": "Dense", "units": 3, "activation": {"a": 1}}], [4]),
    ([{"layer_name": "Dense", "units": 3, "name": [1]}], [4]),
    ([{"layer_name": ["Dense"], "units": 3}], [4]),               # a list where a string is expected
    ([{"layer_name": {"Dense": 1}}], [4]),
    (["Dense"], [4]),                                             # a string where an object is expected
    ([{"layer_name": "Dropout", "rate": "x"}], [4]),
    ([{"layer_name": "Reshape", "target_shape": [10 ** 12]}], [4]),
    ([{"layer_name": "Dense", "units": 3}], [True]),
    ([{"layer_name": "Dense", "units": 3}], [[4]]),
    ([{"layer_name": "Dense", "units": 3}], [10 ** 400]),
    ([{"layer_name": "Dense", "units": 3}], {"a": 4}),            # an object where a list is expected
])
def test_config_that_cannot_be_built_gives_one_pgdl_error(layers, input_shape, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_config": layers, "input_shape": input_shape}))
    with pytest.raises(PGDLError) as info:
        _read_and_build(path)
    assert str(path) in str(info.value)


def test_config_declaring_too_many_weights_is_refused_before_allocating(tmp_path):
    from pgdl_measures.tasks.model_config import MAX_PARAMETERS

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_config": [{"layer_name": "Dense", "units": MAX_PARAMETERS}],
                                "input_shape": [2]}))
    with pytest.raises(PGDLError, match="weights"):
        _read_and_build(path)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_config_builds_or_gives_one_pgdl_error(small_budget, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        _check(_read_and_build, path, data.draw(malformed(CONFIG)))
