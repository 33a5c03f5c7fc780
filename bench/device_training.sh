#!/usr/bin/env bash
# The training module's GPU run (JAX backend), as one prepared script for a device machine
# (H100/H200 with JAX but no TensorFlow or Keras; nothing can be downloaded there).
#
# Here, once (fetches the wheels the device lacks into .whl/, which git ignores):
#     bash bench/device_jax.sh fetch
# There (the device tool's `run`, carrying .whl):
#     run(command="bash bench/device_training.sh", carry=[".whl"], timeout_s=540)
#
# Writes to $OUT: training_vgg_jax_gpu.json and training_resnet56_jax_gpu.json (bench/training.py on
# 10,240 synthetic CIFAR-size images: online-AGN overhead, exact AGN in inference passes, fit
# against a plain jitted loop for steps_per_execution 1 and 16), timing.json (the `timing`
# experiment, paper preset, on synthetic CIFAR-size data: ResNet-56, full and 20% of 10,240
# examples; GN on a subsample of 1,024 examples and 8 iterations per epoch, with its exact cost
# estimated by scaling, see pgdl_measures/training/experiments.py) and log.txt.
# BENCH_EXAMPLES (10240) and STEP_TIMEOUT (150 s per step) override the defaults.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/device_env.sh
N=${BENCH_EXAMPLES:-10240}
T=${STEP_TIMEOUT:-150}
{
    nvidia-smi -L 2>&1 || true
    python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
} > "$OUT/log.txt" 2>&1
rc=0
timeout "$T" python3 bench/training.py --backend jax --model vgg --examples "$N" --epochs 3 --spe 1,16 \
    --out "$OUT/training_vgg_jax_gpu.json" > /dev/null 2>> "$OUT/log.txt" || rc=$?
timeout "$T" python3 bench/training.py --backend jax --model resnet56 --examples "$N" --epochs 3 --spe 16 \
    --out "$OUT/training_resnet56_jax_gpu.json" > /dev/null 2>> "$OUT/log.txt" || rc=$?
timeout "$T" python3 - "$OUT" "$N" >> "$OUT/log.txt" 2>&1 <<'PY' || rc=$?
import sys
from pgdl_measures.training.experiments import run_experiment
out, n = sys.argv[1], int(sys.argv[2])
run_experiment("timing", "paper", out + "/timing", progress=sys.stdout,
               dataset={"name": "synthetic", "train_size": n, "test_size": 1000},
               models={"resnet56": 1}, gn={"examples": 1024, "iterations": 8})
PY
cp "$OUT/timing/timing.json" "$OUT/timing.json" 2>/dev/null
rm -rf "$OUT/timing/timing/runs"
tail -n 30 "$OUT/log.txt"
cat "$OUT"/training_*_jax_gpu.json "$OUT/timing.json" 2>/dev/null | head -c 6000
exit $rc
