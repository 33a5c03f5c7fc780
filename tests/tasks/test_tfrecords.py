"""Tests for pgdl_measures.tasks.tfrecords: the reader against the competition's tf.data loader,
the writer against TensorFlow, and every user error."""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks import tfrecords
from pgdl_measures.tasks.tfrecords import count_examples, iter_batches, list_shards, write_shards

HAS_TF = importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(scope="module")
def tf():
    if not HAS_TF:
        pytest.skip("TensorFlow is not installed")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow

    return tensorflow


def competition_load(tf, files):
    """The PGDL ingestion program's loader (parse_single_example + parse_tensor), as arrays."""

    def deserialize(serialized):
        record = tf.io.parse_single_example(
            serialized,
            features={
                "inputs": tf.io.FixedLenFeature([], tf.string),
                "output": tf.io.FixedLenFeature([], tf.string),
            },
        )
        inputs = tf.io.parse_tensor(record["inputs"], out_type=tf.float32)
        output = tf.io.parse_tensor(record["output"], out_type=tf.int32)
        return inputs, output

    dataset = tf.data.TFRecordDataset([str(f) for f in files]).map(deserialize)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.stack(xs), np.array(ys)


def read_all(files, batch_size, **kwargs):
    batches = list(iter_batches(files, batch_size, **kwargs))
    for x, y in batches:
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert len(x) == len(y) and y.ndim == 1
    if not batches:
        return np.zeros((0,)), np.zeros((0,), np.int32), []
    return (
        np.concatenate([x for x, _ in batches]),
        np.concatenate([y for _, y in batches]),
        [len(y) for _, y in batches],
    )


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(23, 4, 2)).astype(np.float32)
    y = rng.integers(0, 10, size=23).astype(np.int32)
    return x, y


@pytest.fixture
def written(tmp_path, data):
    x, y = data
    return write_shards(tmp_path / "train", x, y, num_shards=3)


# ------------------------------------------------------------------ shards and counting


def test_list_shards_natural_order(tmp_path):
    for k in (10, 2, 0, 1, 11):
        (tmp_path / f"shard_{k}.tfrecord").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "shard_9.tfrecord.tmp").write_bytes(b"")
    assert [p.name for p in list_shards(tmp_path)] == [
        f"shard_{k}.tfrecord" for k in (0, 1, 2, 10, 11)
    ]


def test_list_shards_errors_name_the_folder(tmp_path):
    with pytest.raises(PGDLError, match="not found") as info:
        list_shards(tmp_path / "missing")
    assert info.value.path == str(tmp_path / "missing")
    with pytest.raises(PGDLError, match=r"no shard_\*\.tfrecord files") as info:
        list_shards(tmp_path)
    assert info.value.path == str(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(PGDLError, match="found a file"):
        list_shards(tmp_path / "file")


def test_missing_folder_or_file(tmp_path):
    with pytest.raises(PGDLError, match="not found"):
        iter_batches(tmp_path / "missing", 4)
    with pytest.raises(PGDLError, match="not found") as info:
        iter_batches([tmp_path / "shard_0.tfrecord"], 4)
    assert "shard_0.tfrecord" in str(info.value)
    with pytest.raises(PGDLError, match="no TFRecord files"):
        iter_batches([], 4)


def test_count_examples(written, data):
    assert count_examples(written) == len(data[0])
    assert count_examples(written[0].parent) == len(data[0])
    assert [count_examples(f) for f in written] == [8, 7, 8]


# ------------------------------------------------------------------ the official sample


@pytest.mark.parametrize("split", ["train", "test"])
def test_official_sample_matches_competition_loader(toy_path, tf, split):
    files = list_shards(toy_path / "dataset_1" / split)
    want_x, want_y = competition_load(tf, files)
    x, y, sizes = read_all(files, 64)
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(y, want_y)
    assert x.shape[1:] == (3,) and set(np.unique(y)) <= {0, 1}
    assert count_examples(files) == len(want_y)
    assert sizes[:-1] == [64] * (len(sizes) - 1)
    # The competition's unsorted glob order holds the same examples.
    unsorted_x, _ = competition_load(
        tf, glob.glob(str(toy_path / "dataset_1" / split / "shard_*.tfrecord"))
    )
    assert sorted(map(tuple, unsorted_x)) == sorted(map(tuple, x))


def test_official_sample_without_reference(toy_path):
    files = list_shards(toy_path / "dataset_1" / "train")
    x, y, _ = read_all(files, 50)
    assert len(y) == count_examples(files) > 0
    assert x.shape[1:] == (3,) and np.isfinite(x).all() and set(np.unique(y)) <= {0, 1}


# ------------------------------------------------------------------ round trip, batches, limit


@pytest.mark.parametrize("batch_size", [1, 5, 8, 100])
def test_round_trip(written, data, batch_size):
    x, y, sizes = read_all(written, batch_size)
    np.testing.assert_array_equal(x, data[0])
    np.testing.assert_array_equal(y, data[1])
    assert sizes == [batch_size] * (23 // batch_size) + (
        [23 % batch_size] if 23 % batch_size else []
    )


@pytest.mark.parametrize("limit", [0, 1, 7, 8, 9, 23, 50])
def test_limit(written, data, limit):
    x, y, sizes = read_all(written, 5, limit=limit)
    n = min(limit, 23)
    assert len(y) == n and sum(sizes) == n
    np.testing.assert_array_equal(y, data[1][:n])
    if n:
        np.testing.assert_array_equal(x, data[0][:n])


def test_limit_stops_before_a_bad_record(written):
    corrupt = bytearray(written[2].read_bytes())
    corrupt[-1] ^= 0xFF  # last record's data checksum
    written[2].write_bytes(bytes(corrupt))
    _, y, _ = read_all(written, 4, limit=20)
    assert len(y) == 20
    with pytest.raises(PGDLError):
        read_all(written, 4)


def test_folder_argument_reads_shards_in_natural_order(tmp_path):
    folder = tmp_path / "split"
    x = np.arange(12, dtype=np.float32).reshape(12, 1)
    write_shards(folder, x, np.arange(12), num_shards=12)
    _, y, _ = read_all(folder, 5)
    np.testing.assert_array_equal(y, np.arange(12))


def test_scalar_inputs_and_empty_shards(tmp_path):
    files = write_shards(tmp_path, np.array([1.5, 2.5], np.float64), [3, 4], num_shards=4)
    assert len(files) == 4 and count_examples(files) == 2
    x, y, _ = read_all(files, 3)
    assert x.shape == (2,) and x.dtype == np.float32
    np.testing.assert_array_equal(x, [1.5, 2.5])
    np.testing.assert_array_equal(y, [3, 4])


def test_bad_arguments(written):
    with pytest.raises(ValueError, match="batch_size"):
        iter_batches(written, 0)
    with pytest.raises(ValueError, match="limit"):
        iter_batches(written, 4, limit=-1)


# ------------------------------------------------------------------ the writer against TensorFlow


def test_competition_loader_reads_written_shards(tf, tmp_path, data):
    x, y = data
    write_shards(tmp_path, x, y, num_shards=3)
    got_x, got_y = competition_load(tf, sorted(glob.glob(str(tmp_path / "shard_*.tfrecord"))))
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    assert got_y.dtype == np.int32


def test_tensor_bytes_equal_tf_serialize_tensor(tf):
    from tensorboard.compat.proto import types_pb2

    for array in (
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.float32(0.5),
        np.ones((32, 32, 3), np.float32),
    ):
        assert tfrecords._serialize_tensor(np.asarray(array), types_pb2.DT_FLOAT) == (
            tf.io.serialize_tensor(tf.constant(array)).numpy()
        )
    assert tfrecords._serialize_tensor(np.int32(7), types_pb2.DT_INT32) == (
        tf.io.serialize_tensor(tf.constant(7, tf.int32)).numpy()
    )


def test_example_class_matches_tf_train_example(tf):
    example = tf.train.Example()
    example.features.feature["inputs"].bytes_list.value.append(b"abc")
    example.features.feature["f"].float_list.value.extend([1.0, 2.0])
    example.features.feature["i"].int64_list.value.extend([-1, 2**40])
    ours = tfrecords._example_class().FromString(example.SerializeToString())
    assert ours.features.feature["inputs"].bytes_list.value == [b"abc"]
    assert list(ours.features.feature["f"].float_list.value) == [1.0, 2.0]
    assert list(ours.features.feature["i"].int64_list.value) == [-1, 2**40]
    assert tf.train.Example.FromString(ours.SerializeToString()) == example


def test_write_refuses_existing_shards_unless_overwrite(tmp_path, data):
    x, y = data
    write_shards(tmp_path, x, y, num_shards=5)
    with pytest.raises(PGDLError, match="overwrite=True") as info:
        write_shards(tmp_path, x[:4], y[:4], num_shards=2)
    assert info.value.path == str(tmp_path)
    files = write_shards(tmp_path, x[:4], y[:4], num_shards=2, overwrite=True)
    assert list_shards(tmp_path) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard_0.tfrecord", "shard_1.tfrecord"]
    assert count_examples(tmp_path) == 4


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="y must be integer"):
        write_shards(tmp_path, np.zeros((3, 2)), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="shape"):
        write_shards(tmp_path, np.zeros((3, 2)), np.zeros(4, int))
    with pytest.raises(ValueError, match="int32"):
        write_shards(tmp_path, np.zeros((1, 2)), np.array([2**40]))
    with pytest.raises(ValueError, match="num_shards"):
        write_shards(tmp_path, np.zeros((1, 2)), [0], num_shards=0)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ TensorProto value forms


def tensor_proto(dtype, shape, values=(), field=None, content=None):
    from tensorboard.compat.proto import tensor_pb2

    proto = tensor_pb2.TensorProto(dtype=dtype)
    proto.tensor_shape.SetInParent()
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    if field:
        getattr(proto, field).extend(values)
    if content is not None:
        proto.tensor_content = content
    return proto.SerializeToString()


def record(inputs=None, output=None, edit=None):
    example = tfrecords._example_class()()
    if inputs is not None:
        example.features.feature["inputs"].bytes_list.value.append(inputs)
    if output is not None:
        example.features.feature["output"].bytes_list.value.append(output)
    if edit:
        edit(example)
    return tfrecords._frame(example.SerializeToString())


FLOAT, INT32 = 1, 3  # types_pb2.DT_FLOAT, DT_INT32
GOOD_X = tensor_proto(FLOAT, [3], content=np.ones(3, "<f4").tobytes())
GOOD_Y = tensor_proto(INT32, [], content=np.int32(1).tobytes())
VALUE_FORMS = [  # (inputs proto, output proto, expected x, expected y): TF's FromProto rules
    (
        tensor_proto(FLOAT, [4], [1.5], "float_val"),
        tensor_proto(INT32, [], [7], "int_val"),
        [1.5] * 4,
        7,
    ),
    (
        tensor_proto(FLOAT, [4], [1, 2], "float_val"),
        tensor_proto(INT32, [], [], "int_val"),
        [1, 2, 2, 2],
        0,
    ),
    (
        tensor_proto(FLOAT, [4], [], "float_val"),
        tensor_proto(INT32, [], [3, 4], "int_val"),
        [0] * 4,
        3,
    ),
    (tensor_proto(FLOAT, [4], [1, 2, 3, 4, 5], "float_val"), GOOD_Y, [1, 2, 3, 4], 1),
]


def test_repeated_value_forms(tmp_path):
    (tmp_path / "shard_0.tfrecord").write_bytes(
        b"".join(record(x, y) for x, y, _, _ in VALUE_FORMS)
    )
    x, y, _ = read_all(tmp_path, 10)
    np.testing.assert_array_equal(x, [want for _, _, want, _ in VALUE_FORMS])
    np.testing.assert_array_equal(y, [want for _, _, _, want in VALUE_FORMS])


def test_repeated_value_forms_match_tf_parse_tensor(tf):
    for x, y, want_x, want_y in VALUE_FORMS:
        np.testing.assert_array_equal(tf.io.parse_tensor(x, tf.float32).numpy(), want_x)
        assert tf.io.parse_tensor(y, tf.int32).numpy() == want_y


# ------------------------------------------------------------------ user errors


def flip_byte(offset):
    def edit(data: bytearray) -> bytearray:
        data[offset] ^= 0xFF
        return data

    return edit


# name -> (how to make the shard bytes from a good shard, regex the message must match)
CORRUPTIONS = {
    "data_checksum": (flip_byte(40), "bad checksum of the data"),
    "length_checksum": (flip_byte(2), "bad checksum of the length"),
    "truncated_record": (lambda d: d[:-10], "truncated file"),
    "truncated_header": (lambda d: d + b"\x05\x00\x00", "truncated file"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_file(written, case):
    make, expected = CORRUPTIONS[case]
    bad = written[1]
    bad.write_bytes(bytes(make(bytearray(bad.read_bytes()))))
    with pytest.raises(PGDLError, match=expected) as info:
        read_all(written, 4)
    assert info.value.path == str(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("case", ["length_checksum", "truncated_record", "truncated_header"])
def test_count_examples_detects_broken_framing(written, case):
    make, _ = CORRUPTIONS[case]
    written[2].write_bytes(bytes(make(bytearray(written[2].read_bytes()))))
    with pytest.raises(PGDLError, match="checksum|truncated") as info:
        count_examples(written)
    assert info.value.path == str(written[2])


def set_float_list(example):
    example.features.feature["inputs"].float_list.value.extend([1.0, 2.0])


MALFORMED = {  # name -> (records of shard_1, regex the message must match)
    "missing_inputs": ([record(None, GOOD_Y)], "no `inputs` feature"),
    "missing_output": ([record(GOOD_X, None)], "no `output` feature"),
    "inputs_not_bytes": ([record(None, GOOD_Y, set_float_list)], "`inputs` must be one bytes value.*float_list"),
    "inputs_int32": (
        [record(tensor_proto(INT32, [3], content=b"\0" * 12), GOOD_Y)],
        "`inputs` holds a DT_INT32 tensor, expected DT_FLOAT",
    ),
    "output_float": (
        [record(GOOD_X, tensor_proto(FLOAT, [], content=b"\0" * 4))],
        "`output` holds a DT_FLOAT tensor, expected DT_INT32",
    ),
    "output_not_scalar": (
        [record(GOOD_X, tensor_proto(INT32, [1], content=b"\0" * 4))],
        "`output` has shape \\[1\\], expected a scalar",
    ),
    "inputs_not_tensor_proto": ([record(b"\xff\xff\xff", GOOD_Y)], "not a serialized TensorProto"),
    "content_size": ([record(tensor_proto(FLOAT, [3], content=b"\0" * 8), GOOD_Y)], "tensor_content has 8 bytes"),
    "not_an_example": ([tfrecords._frame(b"\x0a\x05garbage")], "not a serialized tf.train.Example"),
    "other_shape": (
        [record(GOOD_X, GOOD_Y), record(tensor_proto(FLOAT, [4], content=b"\0" * 16), GOOD_Y)],
        r"shape \[4\], but shard_0.tfrecord record 0 has \[3\]",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_record(tmp_path, case):
    records, expected = MALFORMED[case]
    (tmp_path / "shard_0.tfrecord").write_bytes(record(GOOD_X, GOOD_Y) * 3)
    bad = tmp_path / "shard_1.tfrecord"
    bad.write_bytes(b"".join(records))
    with pytest.raises(PGDLError, match=expected) as info:
        read_all(tmp_path, 2)
    assert info.value.path == str(bad)


# ------------------------------------------------------------------ without TensorFlow


def test_reader_needs_no_tensorflow(tmp_path):
    """In a process where TensorFlow cannot be imported, write, count and read; then TensorFlow
    still imports and reads the same shards, and so do we (no protobuf descriptor clash)."""
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        sys.modules["tensorflow"] = None  # importing tensorflow now raises ImportError
        from pgdl_measures.tasks import tfrecords as t
        x = np.ones((5, 2), np.float32)
        files = t.write_shards({str(tmp_path)!r}, x, [0, 1, 2, 3, 4], num_shards=2)
        assert t.count_examples(files) == 5
        ys = [y for _, y in t.iter_batches(files, 2)]
        assert np.concatenate(ys).tolist() == [0, 1, 2, 3, 4], ys
        loaded = [m for m, v in sys.modules.items() if m.startswith("tensorflow") and v]
        assert not loaded, loaded
        if {HAS_TF!r}:
            del sys.modules["tensorflow"]
            import tensorflow as tf
            assert sum(1 for _ in tf.data.TFRecordDataset([str(f) for f in files])) == 5
            ys = [y for _, y in t.iter_batches(files, 5)]
            assert ys[0].tolist() == [0, 1, 2, 3, 4]
        print("ok")
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="jax")
    root = str(Path(tfrecords.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


@pytest.mark.parametrize("batch_size", [2, 10])
def test_shape_mismatch_within_or_across_batches(tmp_path, batch_size):
    other = tensor_proto(FLOAT, [2], content=b"\0" * 8)
    (tmp_path / "shard_0.tfrecord").write_bytes(record(GOOD_X, GOOD_Y) * 2 + record(other, GOOD_Y))
    with pytest.raises(PGDLError, match=r"record 2 feature `inputs` has shape \[2\]") as info:
        read_all(tmp_path, batch_size)
    assert info.value.path == str(tmp_path / "shard_0.tfrecord")
