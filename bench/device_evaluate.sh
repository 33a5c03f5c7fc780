#!/usr/bin/env bash
# `pgdl evaluate` on every GPU of a device machine (H100/H200 with JAX but no TensorFlow, Keras or
# Dask; nothing can be downloaded there), as one prepared run. Not yet run: no device was lent to
# the session that wrote it.
#
# Here, once (fetches the wheels the device lacks into .whl/, which git ignores):
#     bash bench/device_evaluate.sh fetch
# There (the device tool's `run`, carrying .whl):
#     run(command="bash bench/device_evaluate.sh run", carry=[".whl"], timeout_s=540)
#
# `run` installs the wheels into /tmp/site, then with KERAS_BACKEND=jax runs bench/evaluate.py on
# data/mini (the README's main job, a fresh output folder each run): one model at a time, a local
# cluster of 1 worker, and one worker per GPU (`--workers auto`: each worker pinned to its GPU and
# its share of the cores), side by side; wall times, the ratio, the scheduler overhead per model
# and whether every run gave the serial run's values ($OUT/evaluate_gpu.json, progress in
# $OUT/log.txt). BENCH_MODELS (default all 32) and BENCH_TIMEOUT (default 500 s) override.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0 crc32c==2.9.post0
        distributed==2026.8.0 dask==2026.8.0 cloudpickle==3.1.3 toolz==1.2.0 tblib==3.2.2 zict==3.0.0
        msgpack==1.2.4 sortedcontainers==2.4.0 psutil==7.2.2 tornado==6.6.1 partd==1.4.2 locket==1.0.0
        fsspec==2026.9.0 importlib_metadata==10.2.0 zipp==4.1.2 jinja2==3.1.6 MarkupSafe==3.0.4)
case "${1:-run}" in
fetch)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
    grep -qx /.whl/ .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    ls -l .whl
    ;;
run)
    . bench/device_env.sh
    {
        nvidia-smi -L 2>&1 || true
        python3 -c "import jax, keras, distributed; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, 'distributed', distributed.__version__)"
    } > "$OUT/log.txt" 2>&1
    gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | wc -l)
    sizes="1,${gpus:-1}"
    [ "${gpus:-1}" -le 1 ] && sizes=1
    models=()
    [ -n "${BENCH_MODELS:-}" ] && models=(--models "$BENCH_MODELS")
    timeout "${BENCH_TIMEOUT:-500}" python3 -P bench/evaluate.py data/mini "${models[@]}" --workers "$sizes" \
        --out "$OUT/evaluate_gpu.json" > /dev/null 2>> "$OUT/log.txt"
    rc=$?
    tail -n 30 "$OUT/log.txt"
    cat "$OUT/evaluate_gpu.json"
    exit $rc
    ;;
*)
    echo "usage: bash bench/device_evaluate.sh [fetch|run]" >&2
    exit 2
    ;;
esac
