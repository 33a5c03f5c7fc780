#!/usr/bin/env bash
# The hyper-parameter search on a GPU, as one prepared run on a device machine (H100/H200 with
# JAX but no Keras, Optuna or Dask; nothing can be downloaded there). Not yet run: no device
# was lent to the session that wrote it.
#
# Here, once (fetches the wheels the device lacks into .whl/, which git ignores):
#     bash bench/device_search.sh fetch
# There (the device tool's `run`, carrying .whl):
#     run(command="bash bench/device_search.sh run", carry=[".whl"], timeout_s=540)
#
# `run` installs the wheels into /tmp/site, then with KERAS_BACKEND=jax on CIFAR-size synthetic
# data (an npz of 10,240 random 32x32x3 images; the device has no CIFAR files):
#   1. bench/search.py --model resnet20: what an AGN objective costs against the validation
#      objective (online and exact AGN), scheduler and storage overhead per trial
#      ($OUT/search_gpu.json);
#   2. a small real search through `pgdl search run` with one pinned worker per GPU: random
#      search and CMA-ES, one round of 8 ResNet-20 trials of 4 epochs each, validation loss and
#      alpha * AGN + validation loss, then `pgdl search report` ($OUT/search_gpu/report.md,
#      report.png, search.json; progress in $OUT/search_gpu.log);
#   3. the search tests (tests/search) on that machine ($OUT/pytest_search_gpu.txt).
# BENCH_TIMEOUT (default 240 s), SEARCH_TIMEOUT (200 s), TEST_TIMEOUT (90 s) bound each part.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0 crc32c==2.9.post0
        optuna==5.0.0 alembic==1.20.1 sqlalchemy==2.1.9 Mako==1.4.3 colorlog==6.12.0 tqdm==4.70.1
        PyYAML==6.0.4 greenlet cmaes==0.13.1 nevergrad==1.0.12 cma==4.5.0 bayesian-optimization==1.4.0
        directsearch==1.1 lazy-importer==0.1.0 colorama
        distributed==2026.8.0 dask==2026.8.0 cloudpickle==3.1.3 toolz==1.2.0 tblib==3.2.2 zict==3.0.0
        msgpack==1.2.4 sortedcontainers==2.4.0 psutil==7.2.2 tornado==6.6.1 partd==1.4.2 locket==1.0.0
        fsspec==2026.9.0 importlib_metadata==10.2.0 zipp==4.1.2 jinja2==3.1.6 MarkupSafe==3.0.4
        typing_extensions==4.16.0)
case "${1:-run}" in
fetch)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    ls -l .whl
    ;;
run)
    . bench/device_env.sh
    export TF_CPP_MIN_LOG_LEVEL=3
    {
        nvidia-smi -L 2>&1 || true
        python3 -c "import jax, keras, optuna, nevergrad, distributed; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, 'optuna', optuna.__version__, 'distributed', distributed.__version__)"
    } > "$OUT/log.txt" 2>&1
    timeout "${BENCH_TIMEOUT:-240}" python3 bench/search.py --backend jax --model resnet20 \
        --dataset synthetic:10240,32,32,3 --train-fraction 1.0 --epochs 4 --trials 3 --exact \
        --out "$OUT/search_gpu.json" >> "$OUT/log.txt" 2>&1
    echo "bench/search.py: exit $?" >> "$OUT/log.txt"
    python3 - "$OUT" <<'EOF'
import json, sys, numpy as np
rng = np.random.default_rng(0)
np.savez("/tmp/synthetic_cifar.npz", x_train=rng.random((10240, 32, 32, 3), np.float32),
         y_train=rng.integers(0, 10, 10240), x_test=rng.random((2048, 32, 32, 3), np.float32),
         y_test=rng.integers(0, 10, 2048))
spec = {"preset": "ci", "algorithms": ["random", "cmaes"], "objectives": ["val_loss", "agn_val_loss"],
        "alphas": [0.1], "epochs": 4, "budget": 32, "final_seeds": [0],
        "data": {"dataset": "npz", "options": {"path": "/tmp/synthetic_cifar.npz"}, "train_fraction": 1.0,
                 "validation": 0.2, "seed": 0},
        "model": {"name": "resnet20", "options": {}}}
open(sys.argv[1] + "/search_gpu_spec.json", "w").write(json.dumps(spec, indent=1))
EOF
    timeout "${SEARCH_TIMEOUT:-200}" python3 -c "from pgdl_measures.cli import main; main()" search run \
        "$OUT/search_gpu_spec.json" --out "$OUT/search_gpu" > "$OUT/search_gpu.log" 2>&1
    echo "pgdl search run: exit $?" >> "$OUT/log.txt"
    python3 -c "from pgdl_measures.cli import main; main()" search report "$OUT/search_gpu" >> "$OUT/search_gpu.log" 2>&1
    rm -rf "$OUT/search_gpu/trials" "$OUT/search_gpu/final"/*/seed-*/   # checkpoints: large, not needed
    timeout "${TEST_TIMEOUT:-90}" python3 -m pytest -q -p no:cacheprovider tests/search > "$OUT/pytest_search_gpu.txt" 2>&1
    echo "pytest tests/search: exit $?" >> "$OUT/log.txt"
    ;;
*)
    echo "usage: bash bench/device_search.sh fetch|run" >&2
    exit 2
    ;;
esac
