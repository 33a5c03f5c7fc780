# Sourced by the device scripts (device_jax.sh, device_training.sh, device_search.sh) on the GPU
# machine: the output folder, the wheels carried in .whl/ installed into /tmp/site (the device
# image has JAX but not Keras and a few small packages), and the JAX settings every run uses.
OUT=${OUT:-/tmp/bench_out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
    export PATH=/tmp/site/bin:$PATH
else
    export PYTHONPATH=$PWD
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
