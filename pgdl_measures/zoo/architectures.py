"""The zoo's architecture families: the builders live in :mod:`pgdl_measures.training.families`
(shared with the training module's model registry); this module re-exports them."""

from pgdl_measures.training.families import (
                                             ACTIVATIONS,
                                             COMMON_HPARAMS,
                                             FAMILIES,
                                             Family,
                                             HParam,
                                             int_at_least,
                                             mlp,
                                             model_config,
                                             nin,
                                             number_in,
                                             one_of,
                                             vgg,
)

__all__ = ["ACTIVATIONS", "COMMON_HPARAMS", "FAMILIES", "Family", "HParam", "int_at_least", "mlp", "model_config",
           "nin", "number_in", "one_of", "vgg"]
