import numpy as np
import pgdl_no_such_module_2020  # noqa: F401  (a package the competition image never had)


def complexity(model, dataset):
  return 0.0
