#!/usr/bin/env bash
# The JAX-backend GPU benchmark, as one prepared run on a device machine (H100/H200 with JAX
# but no TensorFlow or Keras; nothing can be downloaded there).
#
# Here, once (fetches the wheels the device lacks into .whl/, which git ignores):
#     bash bench/device_jax.sh fetch
# There (the device tool's `run`, carrying .whl):
#     bash bench/device_jax.sh run            # writes $OUT/measures_jax_gpu.json and $OUT/log.txt
#
# `run` installs keras, namex, optree and crc32c from .whl into /tmp/site (the device image has
# numpy, scipy, pandas, scikit-learn, h5py, rich, click, protobuf, tensorboard and JAX), then
# runs bench/measures.py with KERAS_BACKEND=jax on 50,000 synthetic examples: (a) agn against
# inference, (b) gradient_norm vectorized against the loops and the floors (batches of 256),
# (c) every measure's seconds per model; then the JAX tests of tests/autodiff and tests/measures
# on the GPU ($OUT/pytest_jax_gpu.txt; the official sample task's tests run where `fetch` copied
# it into .toy/, carried too). BENCH_EXAMPLES, BENCH_TIMEOUT (default 330 s) and TEST_TIMEOUT
# (150 s) override the defaults; the whole run fits a 540 s timeout_s.
#
#     run(command="bash bench/device_jax.sh run", carry=[".whl", ".toy"], timeout_s=540)
#
# Issue 12's measures (registry.OPT_IN: the competition winners', Jiang et al.'s, Martin &
# Mahoney's) are timed in a second, separate run, each on the same VGG with 50,000 examples
# (target: at most 60 s per model each), written to $OUT/measures_issue12_jax_gpu.json; the
# first run leaves them out (BENCH_MEASURES, the built-ins that `pgdl evaluate` runs by default):
#
#     run(command="bash bench/device_jax.sh run12", carry=[".whl"], timeout_s=560)
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0 crc32c==2.9.post0)
case "${1:-run}" in
fetch)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
    for ignored in /.whl/ /.toy/; do
        grep -qx "$ignored" .git/info/exclude 2>/dev/null || echo "$ignored" >> .git/info/exclude
    done
    toy=${PGDL_TOY_DATA:-../shared/pgdl_toy_data}
    if [ -d "$toy" ]; then mkdir -p .toy && rm -rf .toy/pgdl_toy_data && cp -r "$toy" .toy/pgdl_toy_data; fi
    ls -l .whl .toy
    ;;
run|run12)
    mode=$1
    . bench/device_env.sh
    {
        nvidia-smi -L 2>&1 || true
        python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
    } > "$OUT/log.txt" 2>&1
    issue12=$(python3 -c "from pgdl_measures.registry import BUILTINS, OPT_IN; print(','.join(n for n in BUILTINS if n in OPT_IN))")
    if [ "$mode" = run12 ]; then
        # every issue-12 measure on its own VGG copy, one after another; the report is rewritten after each
        timeout "${BENCH_TIMEOUT:-540}" python3 -P bench/measures.py --backend jax --examples "${BENCH_EXAMPLES:-50000}" \
            --only measures --measures "$issue12" --out "$OUT/measures_issue12_jax_gpu.json" > /dev/null 2>> "$OUT/log.txt"
        rc=$?
        tail -n 40 "$OUT/log.txt"
        cat "$OUT/measures_issue12_jax_gpu.json"
        exit $rc
    fi
    default=$(python3 -c "from pgdl_measures.registry import BUILTINS, OPT_IN; print(','.join(n for n in BUILTINS if n not in OPT_IN))")
    timeout "${BENCH_TIMEOUT:-330}" python3 -P bench/measures.py --backend jax --examples "${BENCH_EXAMPLES:-50000}" \
        --out "$OUT/measures_jax_gpu.json" --measures "${BENCH_MEASURES:-$default}" \
        --grad-batch-size 256 --loop-examples 64 > /dev/null 2>> "$OUT/log.txt"
    rc=$?
    # The JAX-backend tests on the GPU (true float32 throughout, as measures run: the backend
    # tests call the autodiff functions directly and compare them at rtol 1e-5).
    if [ -d .toy/pgdl_toy_data ]; then export PGDL_TOY_DATA=$PWD/.toy/pgdl_toy_data; fi
    JAX_DEFAULT_MATMUL_PRECISION=highest timeout "${TEST_TIMEOUT:-150}" python3 -m pytest -q -p no:cacheprovider \
        tests/autodiff tests/measures > "$OUT/pytest_jax_gpu.txt" 2>&1
    echo "pytest exit status $?" >> "$OUT/pytest_jax_gpu.txt"
    tail -n 40 "$OUT/log.txt"
    tail -n 15 "$OUT/pytest_jax_gpu.txt"
    cat "$OUT/measures_jax_gpu.json"
    exit $rc
    ;;
*)
    echo "usage: bash bench/device_jax.sh [fetch|run|run12]" >&2
    exit 2
    ;;
esac
