"""Benchmark the TFRecord reader of `pgdl_measures.tasks.tfrecords` against tf.data; prints JSON.

Writes N CIFAR-shaped examples (32x32x3 float32, random) into shards in a temporary folder with
`write_shards`, then reads them all in batches with `iter_batches` (`python`) and, where TensorFlow
is installed, with the competition's tf.data pipeline (`tf`: parallel `parse_single_example` +
`parse_tensor`, `batch`, `prefetch`), and reports examples/s and MB/s (MB = 1e6 bytes of TFRecord
files) for each, the ratio tf/python, the write speed and the `count_examples` time.

    python bench/tfrecords.py [--examples 50000] [--shards 10] [--batch-size 1000] [--repeats 2]

Each reader is timed `repeats` times, alternating with the other, after one untimed warm-up
pass; the best time of each is reported.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pgdl_measures.tasks.tfrecords import (  # noqa: E402
    count_examples,
    iter_batches,
    list_shards,
    write_shards,
)


def _tf_batches(files, batch_size: int):
    import tensorflow as tf

    def parse(record):
        spec = {"inputs": tf.io.FixedLenFeature([], tf.string), "output": tf.io.FixedLenFeature([], tf.string)}
        example = tf.io.parse_single_example(record, spec)
        return tf.io.parse_tensor(example["inputs"], tf.float32), tf.io.parse_tensor(example["output"], tf.int32)

    dataset = tf.data.TFRecordDataset([os.fspath(f) for f in files]).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def _read_all(files, batch_size: int, reader: str) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    checksum = 0.0
    batches = _tf_batches(files, batch_size) if reader == "tf" else iter_batches(files, batch_size)
    for x, y in batches:
        n += len(y)
        checksum += float(x[0, 0, 0, 0])  # touch the data
    return n, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.random((args.examples, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, args.examples, dtype=np.int32)
    readers = ["python"]
    if importlib.util.find_spec("tensorflow") is not None:
        readers.insert(0, "tf")

    result: dict = {
        "examples": args.examples,
        "shape": [32, 32, 3],
        "shards": args.shards,
        "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "readers": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "train"
        start = time.perf_counter()
        write_shards(folder, x, y, num_shards=args.shards)
        write_s = time.perf_counter() - start
        files = list_shards(folder)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        start = time.perf_counter()
        count = count_examples(files)
        count_s = time.perf_counter() - start
        result.update(
            total_mb=round(megabytes, 1),
            count=count,
            count_s=round(count_s, 4),
            write_s=round(write_s, 3),
            write_examples_per_s=round(args.examples / write_s),
        )
        for reader in readers:
            _read_all(files, args.batch_size, reader)  # warm-up (imports, page cache)
        best = dict.fromkeys(readers, float("inf"))
        for _ in range(args.repeats):  # alternate the readers so both see the same load
            for reader in readers:
                n, seconds = _read_all(files, args.batch_size, reader)
                assert n == count, (reader, n, count)
                best[reader] = min(best[reader], seconds)
        for reader in readers:
            result["readers"][reader] = {
                "seconds": round(best[reader], 3),
                "examples_per_s": round(count / best[reader]),
                "mb_per_s": round(megabytes / best[reader], 1),
            }
    if "tf" in result["readers"]:
        result["tf_over_python"] = round(
            result["readers"]["tf"]["examples_per_s"]
            / result["readers"]["python"]["examples_per_s"],
            2,
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
