"""Read and write the PGDL competition's TFRecord datasets, without TensorFlow.

A PGDL dataset folder (``dataset_1/train``, ``dataset_1/test``) holds TFRecord shards
``shard_<k>.tfrecord``. Every record is a serialized ``tf.train.Example`` with two ``bytes``
features:

* ``inputs``: ``tf.io.serialize_tensor`` of one float32 example (a serialized ``TensorProto``,
  e.g. shape ``[32, 32, 3]``);
* ``output``: ``tf.io.serialize_tensor`` of its int32 scalar label.

A TFRecord file is a sequence of records framed as::

    uint64 length | uint32 masked_crc32c(length) | byte data[length] | uint32 masked_crc32c(data)

(little-endian; ``masked_crc(c) = ((c >> 15 | c << 17) + 0xa282ead8) mod 2**32``).

Order of examples. The competition's loader did ``glob.glob("shard_*.tfrecord")`` and fed the
list, *unsorted*, to ``tf.data.TFRecordDataset``, so its example order depended on the file
system. This module always reads shards in natural sort order (``shard_2`` before ``shard_10``)
and records in file order, so the same folder gives the same batches on every machine. Measures
that use a fixed number of batches may therefore see different examples than the competition's
ingestion program did on a folder whose directory listing was not sorted.

The reader, :func:`iter_batches`, is pure Python + NumPy and needs no TensorFlow: the record
framing and its CRC32C checks are done here with the ``crc32c`` package, ``tf.train.Example`` and
``TensorProto`` are decoded by the ``protobuf`` runtime (``TensorProto`` from
``tensorboard.compat.proto``; ``Example`` from the descriptor built in :func:`_example_class`),
and each batch is decoded with one ``np.frombuffer``. It is also faster than a ``tf.data``
pipeline (``bench/tfrecords.py``).

Why not the ``tfrecord`` PyPI package: its ``tfrecord_iterator`` reads the two CRCs of each record
but never checks them, and importing any part of it (``tfrecord/__init__`` imports its own
``example_pb2``) registers ``tensorflow.Example`` etc. in protobuf's default descriptor pool, after
which ``import tensorflow`` fails with "duplicate symbol 'tensorflow.BytesList'" (and the other
way round; see vahidk/tfrecord pull request #103). We therefore define the ``Example`` schema in a
private descriptor pool, which cannot clash with TensorFlow's.

Errors a user can cause (missing folder, no shards, bad checksum, truncated file, a record
without ``inputs``/``output`` or of the wrong type) raise :class:`~pgdl_measures.errors.PGDLError`
naming the shard file.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from pgdl_measures.errors import PGDLError
from scoring.rules import natural_key

__all__ = ["count_examples", "iter_batches", "list_shards", "write_shards"]

SHARD_GLOB = "shard_*.tfrecord"
_HEADER = struct.Struct("<QI")  # length, masked crc of length
_CRC = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8
_FIX = "re-create or re-download this shard"

PathLike = str | os.PathLike


# --------------------------------------------------------------------------------------------
# Shard discovery and counting (no decoding, no TensorFlow)
# --------------------------------------------------------------------------------------------


def list_shards(folder: PathLike) -> list[Path]:
    """The ``shard_*.tfrecord`` files of a dataset folder, in natural sort order.

    ``shard_2.tfrecord`` comes before ``shard_10.tfrecord`` (the competition's loader used the
    unsorted ``glob.glob`` order instead; see the module docstring).

    Args:
        folder: a dataset split folder such as ``task/dataset_1/train``.

    Returns:
        The shard paths, naturally sorted.

    Raises:
        PGDLError: the folder does not exist, is not a folder, or holds no shards.
    """
    folder = Path(folder)
    if not folder.exists():
        raise PGDLError("dataset folder not found; check the task path", folder)
    if not folder.is_dir():
        raise PGDLError(f"expected a folder of {SHARD_GLOB} files, found a file", folder)
    shards = sorted((p for p in folder.glob(SHARD_GLOB) if p.is_file()), key=lambda p: natural_key(p.name))
    if not shards:
        raise PGDLError(
            f"no {SHARD_GLOB} files in this folder; a PGDL dataset split looks like "
            "dataset_1/train/shard_0.tfrecord",
            folder,
        )
    return shards


def _as_file_list(files: PathLike | Iterable[PathLike]) -> list[Path]:
    """A folder (its shards), one file, or an iterable of files -> list of existing files."""
    if isinstance(files, (str, os.PathLike)):
        path = Path(files)
        paths = list_shards(path) if path.is_dir() else [path]
    else:
        paths = [Path(f) for f in files]
    if not paths:
        raise PGDLError("no TFRecord files given")
    for path in paths:
        if not path.is_file():
            raise PGDLError("TFRecord file not found", path)
    return paths


def _masked_crc(data) -> int:
    import crc32c

    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def _read_length(f, path: Path, index: int, offset: int) -> int | None:
    """Read one record header at `offset`: the data length, or None at the end of the file.

    Raises:
        PGDLError: a header cut short, or a length whose masked CRC32C does not match.
    """
    header = f.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise PGDLError(
            f"truncated file: record {index} header has {len(header)} of {_HEADER.size} bytes; {_FIX}",
            path,
        )
    length, length_crc = _HEADER.unpack(header)
    if _masked_crc(header[:8]) != length_crc:
        raise PGDLError(
            f"bad checksum of the length of record {index} (byte {offset}): the file is "
            f"corrupt or not a TFRecord; {_FIX}",
            path,
        )
    return length


def _count_file(path: Path) -> int:
    """Count the records of one file from the length headers only (data CRCs not checked)."""
    size = path.stat().st_size
    count = 0
    with open(path, "rb") as f:
        while True:
            start = f.tell()
            if start == size:
                return count
            length = _read_length(f, path, count, start)
            end = start + _HEADER.size + length + _CRC.size
            if end > size:
                raise PGDLError(
                    f"truncated file: record {count} needs {end} bytes, the file has {size}; "
                    f"{_FIX}",
                    path,
                )
            f.seek(end)
            count += 1


def count_examples(files: PathLike | Iterable[PathLike]) -> int:
    """Number of examples (records) in TFRecord files, without decoding them.

    Reads only the 12-byte record headers and checks the length checksums and the file sizes, so
    it is fast and needs no TensorFlow; the data checksums are verified by :func:`iter_batches`.

    Args:
        files: a dataset folder, one TFRecord file, or an iterable of files.

    Returns:
        The total number of records.

    Raises:
        PGDLError: a file is missing, truncated, or has a corrupt record header.
    """
    return sum(_count_file(path) for path in _as_file_list(files))


# --------------------------------------------------------------------------------------------
# Protobuf messages (no TensorFlow)
# --------------------------------------------------------------------------------------------


@functools.cache
def _example_class():
    """The ``tensorflow.Example`` message class, built in a private descriptor pool.

    Same schema and wire format as ``tensorflow/core/example/{example,feature}.proto``; the
    private pool keeps it from clashing with TensorFlow's own registration (module docstring).
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="pgdl_measures/tensorflow_example.proto", package="tensorflow", syntax="proto3"
    )

    def message(name, *fields, parent=None):
        msg = (parent.nested_type if parent else file.message_type).add(name=name)
        for field_name, number, kind, label, type_name, oneof in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
            if oneof is not None:
                field.oneof_index = oneof
        return msg

    repeated, optional = fdp.LABEL_REPEATED, fdp.LABEL_OPTIONAL
    message("BytesList", ("value", 1, fdp.TYPE_BYTES, repeated, None, None))
    message("FloatList", ("value", 1, fdp.TYPE_FLOAT, repeated, None, None))
    message("Int64List", ("value", 1, fdp.TYPE_INT64, repeated, None, None))
    feature = message(
        "Feature",
        ("bytes_list", 1, fdp.TYPE_MESSAGE, optional, ".tensorflow.BytesList", 0),
        ("float_list", 2, fdp.TYPE_MESSAGE, optional, ".tensorflow.FloatList", 0),
        ("int64_list", 3, fdp.TYPE_MESSAGE, optional, ".tensorflow.Int64List", 0),
    )
    feature.oneof_decl.add(name="kind")
    features = message(
        "Features",
        ("feature", 1, fdp.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry", None),
    )
    entry = message(
        "FeatureEntry",
        ("key", 1, fdp.TYPE_STRING, optional, None, None),
        ("value", 2, fdp.TYPE_MESSAGE, optional, ".tensorflow.Feature", None),
        parent=features,
    )
    entry.options.map_entry = True
    message("Example", ("features", 1, fdp.TYPE_MESSAGE, optional, ".tensorflow.Features", None))

    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


@functools.cache
def _tensor_protos():
    """(TensorProto, types_pb2) from TensorBoard's copy of TensorFlow's protos."""
    from tensorboard.compat.proto import tensor_pb2, types_pb2

    return tensor_pb2.TensorProto, types_pb2


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


def _iter_records(path: Path) -> Iterator[bytes]:
    """Yield the data of each record of a TFRecord file, checking both CRC32Cs."""
    with open(path, "rb", buffering=1 << 20) as f:
        index = 0
        offset = 0
        while True:
            length = _read_length(f, path, index, offset)
            if length is None:
                return
            body = f.read(length + _CRC.size)
            if len(body) < length + _CRC.size:
                raise PGDLError(
                    f"truncated file: record {index} (byte {offset}) has {len(body)} of "
                    f"{length + _CRC.size} bytes; {_FIX}",
                    path,
                )
            data = memoryview(body)[:length]
            if _masked_crc(data) != _CRC.unpack_from(body, length)[0]:
                raise PGDLError(
                    f"bad checksum of the data of record {index} (byte {offset}): the file is "
                    f"corrupt; {_FIX}",
                    path,
                )
            yield data
            index += 1
            offset += _HEADER.size + length + _CRC.size


class _RecordError(Exception):
    """A malformed record; the caller adds the file and record index."""


def _bytes_feature(features, key: str) -> bytes:
    if key not in features:
        present = ", ".join(sorted(features)) or "none"
        raise _RecordError(
            f"has no `{key}` feature (features present: {present}); a PGDL record needs the bytes "
            "features `inputs` and `output`"
        )
    feature = features[key]
    kind = feature.WhichOneof("kind")
    if kind != "bytes_list" or len(feature.bytes_list.value) != 1:
        found = "no value" if kind is None else f"{kind} of {len(getattr(feature, kind).value)}"
        raise _RecordError(
            f"feature `{key}` must be one bytes value (a serialized TensorProto), found {found}"
        )
    return feature.bytes_list.value[0]


def _decode_tensor(data: bytes, key: str, dtype: int, np_dtype: str, values_field: str):
    """Decode a serialized TensorProto -> (shape, raw little-endian bytes of its elements).

    Follows TensorFlow's ``Tensor::FromProto``: ``tensor_content`` when present (its size must
    match), otherwise the repeated ``*_val`` field, where a shorter list is padded with its last
    value, an empty one gives zeros, and extra values are ignored.
    """
    tensor_proto, types_pb2 = _tensor_protos()
    try:
        proto = tensor_proto.FromString(data)
    except DecodeError as exc:
        raise _RecordError(f"feature `{key}` is not a serialized TensorProto ({exc})") from None
    if proto.dtype != dtype:
        found = (
            types_pb2.DataType.Name(proto.dtype)
            if proto.dtype in types_pb2.DataType.values()
            else proto.dtype
        )
        raise _RecordError(
            f"feature `{key}` holds a {found} tensor, expected {types_pb2.DataType.Name(dtype)}"
        )
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    if proto.tensor_shape.unknown_rank or (shape and min(shape) < 0):
        raise _RecordError(f"feature `{key}` has an unknown or negative shape")
    n = math.prod(shape)
    itemsize = np.dtype(np_dtype).itemsize
    if proto.tensor_content:
        content = proto.tensor_content
        if len(content) != n * itemsize:
            raise _RecordError(
                f"feature `{key}`: tensor_content has {len(content)} bytes, shape {list(shape)} "
                f"needs {n * itemsize}"
            )
        return shape, content
    values = getattr(proto, values_field)
    out = np.zeros(n, dtype=np_dtype)
    if n and len(values):
        head = np.asarray(values[:n], dtype=np_dtype)
        out[: len(head)] = head
        out[len(head) :] = head[-1]
    return shape, out.tobytes()


def _iter_batches(paths: list[Path], batch_size: int, limit: int | None):
    example_class = _example_class()
    _, types_pb2 = _tensor_protos()
    remaining = limit
    x_parts: list[bytes] = []
    y_parts: list[bytes] = []
    x_shape: tuple[int, ...] | None = None
    first_at = ""

    def flush():
        x = np.frombuffer(bytearray().join(x_parts), dtype="<f4").reshape(len(x_parts), *x_shape)
        y = np.frombuffer(bytearray().join(y_parts), dtype="<i4")
        x_parts.clear()
        y_parts.clear()
        return x.astype(np.float32, copy=False), y.astype(np.int32, copy=False)

    for path in paths:
        if remaining == 0:
            break
        for index, record in enumerate(_iter_records(path)):
            try:
                try:
                    example = example_class.FromString(record)
                except DecodeError as exc:
                    raise _RecordError(f"is not a serialized tf.train.Example ({exc})") from None
                features = example.features.feature
                shape, x_bytes = _decode_tensor(
                    _bytes_feature(features, "inputs"),
                    "inputs",
                    types_pb2.DT_FLOAT,
                    "<f4",
                    "float_val",
                )
                y_shape, y_bytes = _decode_tensor(
                    _bytes_feature(features, "output"),
                    "output",
                    types_pb2.DT_INT32,
                    "<i4",
                    "int_val",
                )
                if y_shape != ():
                    raise _RecordError(
                        f"feature `output` has shape {list(y_shape)}, expected a scalar"
                    )
                if x_shape is None:
                    x_shape, first_at = shape, f"{path.name} record {index}"
                elif shape != x_shape:
                    raise _RecordError(
                        f"feature `inputs` has shape {list(shape)}, but {first_at} has "
                        f"{list(x_shape)}; all examples must have the same shape"
                    )
            except _RecordError as exc:
                raise PGDLError(f"record {index} {exc}; {_FIX}", path) from None
            x_parts.append(x_bytes)
            y_parts.append(y_bytes)
            if len(x_parts) == batch_size:
                yield flush()
            if remaining is not None:
                remaining -= 1
                if remaining == 0:
                    break
    if x_parts:
        yield flush()


# --------------------------------------------------------------------------------------------
# Public reader
# --------------------------------------------------------------------------------------------


def iter_batches(
    files: PathLike | Iterable[PathLike],
    batch_size: int,
    *,
    limit: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``(x, y)`` batches from PGDL TFRecord shards, in file then record order.

    Only one batch is in memory at a time. The last batch is smaller when the number of
    examples is not a multiple of ``batch_size``.

    Args:
        files: the shards in reading order (e.g. from :func:`list_shards`), one file, or a
            dataset folder (read through :func:`list_shards`).
        batch_size: examples per batch (positive).
        limit: stop after this many examples (``None``: all); records past it are not read.

    Yields:
        ``x``: float32 array ``[b, *input_shape]``; ``y``: int32 labels ``[b]``.

    Raises:
        PGDLError: a missing file, a bad checksum, a truncated file, a record without the
            ``inputs``/``output`` bytes features, a tensor of the wrong dtype or shape, or
            inputs of different shapes; the message names the shard file. Raised when the
            generator reaches the bad record (batches before it have been yielded).
        ValueError: ``batch_size`` is not positive or ``limit`` is negative.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if limit is not None and (int(limit) != limit or limit < 0):
        raise ValueError(f"limit must be None or a non-negative integer, got {limit!r}")
    paths = _as_file_list(files)
    batch_size = int(batch_size)
    limit = None if limit is None else int(limit)
    return _iter_batches(paths, batch_size, limit)


# --------------------------------------------------------------------------------------------
# Writer (no TensorFlow)
# --------------------------------------------------------------------------------------------


def _serialize_tensor(array: np.ndarray, dtype: int) -> bytes:
    """The bytes ``tf.io.serialize_tensor`` gives for `array` (dtype, shape, tensor_content)."""
    tensor_proto, _ = _tensor_protos()
    proto = tensor_proto(dtype=dtype, tensor_content=array.tobytes())
    proto.tensor_shape.SetInParent()  # TF writes an empty shape for scalars, too
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto.SerializeToString()


def _frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return b"".join((length, _CRC.pack(_masked_crc(length)), data, _CRC.pack(_masked_crc(data))))


def write_shards(
    folder: PathLike,
    x,
    y,
    *,
    num_shards: int = 1,
    overwrite: bool = False,
) -> list[Path]:
    """Write examples as PGDL TFRecord shards ``shard_0.tfrecord`` ... ``shard_<n-1>.tfrecord``.

    The records are exactly the competition's format (``inputs``: serialized float32
    TensorProto of one example; ``output``: serialized int32 scalar TensorProto), readable by
    the competition's tf.data loader; TensorFlow is not needed. Examples are split into
    ``num_shards`` contiguous, nearly equal parts, so reading the shards in natural order gives
    back the original order. Each shard is written under a temporary name and renamed.

    Args:
        folder: output folder, created if missing.
        x: inputs ``[n, ...]``, converted to float32.
        y: integer labels ``[n]`` within the int32 range.
        num_shards: number of shard files (some are empty when ``num_shards > n``).
        overwrite: replace the ``shard_*.tfrecord`` files already in ``folder``; otherwise their
            presence is an error (a reader would mix old and new shards).

    Returns:
        The written shard paths, in order.

    Raises:
        PGDLError: ``folder`` holds shards and ``overwrite`` is false, or cannot be written.
        ValueError: ``x``/``y`` have the wrong shape or type, or ``num_shards < 1``.
    """
    folder = Path(folder)
    x = np.asarray(x)
    y = np.asarray(y)
    if int(num_shards) != num_shards or num_shards < 1:
        raise ValueError(f"num_shards must be a positive integer, got {num_shards!r}")
    if x.ndim < 1 or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"x must be a numeric array [n, ...], got {x.dtype} of shape {x.shape}")
    if np.iscomplexobj(x):
        raise ValueError("x must be real, got a complex array")
    if y.shape != (len(x),) or not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ValueError(
            f"y must be integer labels of shape ({len(x)},), got {y.dtype} of shape {y.shape}"
        )
    if y.size and (y.min() < np.iinfo(np.int32).min or y.max() > np.iinfo(np.int32).max):
        raise ValueError("y must fit in int32")
    x = np.ascontiguousarray(x, dtype="<f4")
    y = y.astype("<i4")

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PGDLError(f"cannot create the output folder: {exc.strerror}", folder) from None
    old = [p for p in folder.glob(SHARD_GLOB) if p.is_file()]
    if old and not overwrite:
        raise PGDLError(
            f"already holds {len(old)} {SHARD_GLOB} file(s); choose an empty folder or pass "
            "overwrite=True",
            folder,
        )

    _, types_pb2 = _tensor_protos()
    example_class = _example_class()
    labels = {int(v): _serialize_tensor(v, types_pb2.DT_INT32) for v in np.unique(y)}
    bounds = np.linspace(0, len(x), int(num_shards) + 1).round().astype(int)
    written: list[tuple[Path, Path]] = []
    try:
        for k in range(int(num_shards)):
            final = folder / f"shard_{k}.tfrecord"
            temp = folder / f".{final.name}.{os.getpid()}.tmp"  # not matched by shard_*.tfrecord
            written.append((temp, final))
            with open(temp, "wb") as f:
                for i in range(bounds[k], bounds[k + 1]):
                    example = example_class()
                    feature = example.features.feature
                    feature["inputs"].bytes_list.value.append(
                        _serialize_tensor(x[i], types_pb2.DT_FLOAT)
                    )
                    feature["output"].bytes_list.value.append(labels[int(y[i])])
                    f.write(_frame(example.SerializeToString()))
                f.flush()
                os.fsync(f.fileno())
    except BaseException as exc:  # leave no temporary files behind
        for temp, _ in written:
            temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PGDLError(f"cannot write shards: {exc.strerror or exc}", folder) from None
        raise
    finals = {final for _, final in written}
    for path in old:
        if path not in finals:
            path.unlink()
    # Not scoring.files.atomic_write (one file from bytes in memory): the shards are streamed to
    # disk one by one, each fsync'd, and renamed together only once all of them are written.
    for temp, final in written:
        os.replace(temp, final)
    return [final for _, final in written]
