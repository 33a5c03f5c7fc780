# A one-off warm-up: the first call in a process sleeps $PGDL_WARM_UP_SECONDS (default 3.5),
# later calls are instant. Returns the number of layers.
import os
import time

_warm = False


def complexity(model, dataset):
  global _warm
  if not _warm:
    time.sleep(float(os.environ.get('PGDL_WARM_UP_SECONDS', '3.5')))
    _warm = True
  return float(len(model.layers))
