"""The competition's small rules that every layer shares, each defined once.

* :func:`normalize_model_id`: how the competition's scoring program keyed a model
  (``"3"`` -> ``"model_3"``), and to which ids it applied that rule (the reference's only);
* :func:`natural_key`: the order of model folders, shards and task folders (``model_2`` before
  ``model_10``);
* :data:`EXCEEDED`: the value a ``.predict`` holds for a model that ran out of time;
* :data:`COMPETITION_TIME_BUDGET`: the seconds the competition's ingestion allowed per model.

Nothing here imports anything beyond the standard library, so the lowest module can use it.
"""

from __future__ import annotations

import re
from typing import Any

#: The value the competition's ingestion program wrote in a ``.predict`` for a model whose
#: submission ran out of time (``"EXCEEDED"``, upper case). Not to be confused with the status
#: ``"exceeded"`` of a row of ``pgdl evaluate``'s results store (``STATUS_EXCEEDED`` there).
EXCEEDED = "EXCEEDED"

#: The competition's time budget per model, in seconds (its ingestion's ``max_time_per_model =
#: 60 * 5``): the default budget of ``pgdl evaluate`` and ``pgdl run-submission``.
COMPETITION_TIME_BUDGET = 300.0

_DIGITS = re.compile(r"(\d+)")


def normalize_model_id(model_id: Any) -> str:
    """The model id as the competition keyed it: ``model_<id>`` unless it already says "model".

    The competition's scoring program tested ``'model' not in mid`` (a substring test, not a
    prefix test), so ``"3"`` becomes ``"model_3"`` and ``"model_3"`` or ``"mymodel"`` stay as
    they are. It applied the rule to the ids of the reference (``model_configs.json``) only and
    looked the prediction up under the normalized id, so a ``.predict`` keyed ``"3"`` matched
    nothing there (the task scored nan): :func:`scoring.predictions.align_prediction` refuses
    such keys when it reads a file (``strict_keys``). The toolkit applies the same rule to model
    ids a user types (``--models 3``) and to the folders of a task (``model_<k>``, unchanged).

    Args:
        model_id: a key of ``model_configs.json``, of a ``.predict`` file, or a typed id.

    Returns:
        The normalized id (a string).
    """
    text = str(model_id)
    return text if "model" in text else f"model_{text}"


def natural_key(text: Any) -> list:
    """Sort key that orders ``model_2`` before ``model_10`` (and ``shard_2`` before ``shard_10``).

    Digit runs compare as numbers, the rest as text; pass a file's name, not its path.
    """
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(str(text))]
