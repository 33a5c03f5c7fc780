"""The measure registry: built-ins merged with plugins from entry points.

Built-ins are named here (module path and class) and imported when first used. Third-party
packages register measures in the entry-point group ``pgdl_measures.measures`` (the entry
point's name is the measure's name, its value ``package.module:Class``). Loading is cached. A
plugin that fails to import, or that reuses a name, is a warning naming its package; the
built-in keeps the name.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from pgdl_measures.errors import PGDLError
from pgdl_measures.params import is_int, is_number

ENTRY_POINT_GROUP = "pgdl_measures.measures"

#: name -> "module:Class" of the built-in measures.
BUILTINS: dict[str, str] = {
    "agn": "pgdl_measures.measures.agn:AGN",
    "gradient_norm": "pgdl_measures.measures.gradient_norm:GradientNorm",
    "vc_dimension": "pgdl_measures.measures.vc_dimension:VCDimension",
    "jacobian_norm": "pgdl_measures.measures.jacobian_norm:JacobianNorm",
    "distance_from_init": "pgdl_measures.measures.distance_from_init:DistanceFromInit",
    "sharpness": "pgdl_measures.measures.sharpness:Sharpness",
    "sharpness_pgdl_v1": "pgdl_measures.measures.sharpness_pgdl:SharpnessPGDLv1",
    "sharpness_pgdl_v2": "pgdl_measures.measures.sharpness_pgdl:SharpnessPGDLv2",
    # the PGDL competition's winners
    "davies_bouldin": "pgdl_measures.measures.davies_bouldin:DaviesBouldin",
    "mixup_accuracy": "pgdl_measures.measures.mixup_accuracy:MixupAccuracy",
    "davies_bouldin_mixup": "pgdl_measures.measures.davies_bouldin_mixup:DaviesBouldinMixup",
    "mixup_margin": "pgdl_measures.measures.mixup_margin:MixupMargin",
    "augment_margin": "pgdl_measures.measures.augment_margin:AugmentMargin",
    "perturbed_margin": "pgdl_measures.measures.perturbed_margin:PerturbedMargin",
    "normalized_margin": "pgdl_measures.measures.normalized_margin:NormalizedMargin",
    "augment_robustness": "pgdl_measures.measures.augment_robustness:AugmentRobustness",
    "augment_change_rate": "pgdl_measures.measures.augment_robustness:AugmentChangeRate",
    "label_variation": "pgdl_measures.measures.label_variation:LabelVariation",
    "label_variation_knn": "pgdl_measures.measures.label_variation:LabelVariationKNN",
    # Jiang et al. 2019's strongest, and Martin & Mahoney's heavy-tail exponents
    "pacbayes_mag_flatness": "pgdl_measures.measures.pacbayes_mag_flatness:PacBayesMagFlatness",
    "sum_of_fro": "pgdl_measures.measures.sum_of_fro:SumOfFro",
    "log_prod_of_spec": "pgdl_measures.measures.spectral_norms:LogProdOfSpec",
    "log_prod_of_spec_over_margin": "pgdl_measures.measures.spectral_norms:LogProdOfSpecOverMargin",
    "sum_of_spec": "pgdl_measures.measures.spectral_norms:SumOfSpec",
    "sum_of_spec_over_margin": "pgdl_measures.measures.spectral_norms:SumOfSpecOverMargin",
    "log_path_norm": "pgdl_measures.measures.path_norm:LogPathNorm",
    "inverse_margin": "pgdl_measures.measures.inverse_margin:InverseMargin",
    "power_law_alpha": "pgdl_measures.measures.power_law_alpha:PowerLawAlpha",
    "weighted_power_law_alpha": "pgdl_measures.measures.power_law_alpha:WeightedPowerLawAlpha",
    "power_law_alpha_sliced": "pgdl_measures.measures.power_law_alpha:PowerLawAlphaSliced",
    # a fitted combination of the others (`pgdl meta fit`)
    "meta_measure": "pgdl_measures.meta.measure:MetaMeasure",
}

#: Built-ins that ``pgdl evaluate`` computes only when asked for (by name, or ``--measure all``):
#: the slower published measures, kept out of the default run so the main job stays a few minutes.
OPT_IN: frozenset[str] = frozenset({
    "davies_bouldin", "mixup_accuracy", "davies_bouldin_mixup", "mixup_margin", "augment_margin",
    "perturbed_margin", "normalized_margin", "augment_robustness", "label_variation", "pacbayes_mag_flatness", "sum_of_fro",
    "log_prod_of_spec", "log_prod_of_spec_over_margin", "sum_of_spec", "sum_of_spec_over_margin",
    "log_path_norm", "inverse_margin", "power_law_alpha", "weighted_power_law_alpha",
    "power_law_alpha_sliced", "augment_change_rate", "label_variation_knn", "meta_measure",
})

#: Built-ins fitted on a benchmark of tasks (``pgdl meta fit``): ranking one among the measures it
#: was fitted from, on the tasks it was fitted on, would score its own training data, so
#: ``--measure all`` leaves it out; it is computed when named.
FITTED: frozenset[str] = frozenset({"meta_measure"})

#: the ``--measure`` name that selects every registered measure (built-ins and plugins) but :data:`FITTED`
ALL = "all"


def _import(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@functools.cache
def _load() -> tuple[dict[str, type], dict[str, str]]:
    """(measure classes by name, the package each came from): built-ins, then plugins."""
    from pgdl_measures.measures.base import Measure

    found: dict[str, type] = {}
    origin: dict[str, str] = {}
    for name, target in BUILTINS.items():
        found[name] = _import(target)
        origin[name] = "built-in"
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        package = ep.dist.name if ep.dist is not None else ep.value.split(":")[0]
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - any failure of a third-party import
            warnings.warn(f"measure plugin {ep.name!r} from package {package!r} failed to load: "
                          f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Measure)):
            warnings.warn(f"measure plugin {ep.name!r} from package {package!r} is not a Measure subclass; ignored",
                          RuntimeWarning, stacklevel=2)
            continue
        if ep.name in found:
            warnings.warn(f"measure plugin {ep.name!r} from package {package!r} duplicates the name already "
                          f"registered by {origin[ep.name]}; keeping the first", RuntimeWarning, stacklevel=2)
            continue
        found[ep.name] = cls
        origin[ep.name] = package
    return found, origin


def available_measures() -> dict[str, type]:
    """All measure classes by name: built-ins first, then entry-point plugins (cached)."""
    return _load()[0]


available_measures.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


def list_measures() -> list[str]:
    """The names of every registered measure (built-ins and plugins), sorted."""
    return sorted(available_measures())


def measure_origin(name: str) -> str:
    """'built-in', or the name of the distribution that registered the plugin."""
    return _load()[1][name]


def parse_param_value(text: str):
    """A measure parameter given on the command line: JSON when it is JSON (``500``, ``1e-3``,
    ``true``, ``null``, ``"text"``, ``[1, 2]``), Python's ``True``/``False``/``None``, else the
    string itself (``sgd``)."""
    import json

    text = text.strip()
    python = {"True": True, "False": False, "None": None}
    if text in python:
        return python[text]
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, an integer over 4,300 digits, nested too deeply
        return text


def _measure_class(name: str) -> type:
    measures = available_measures()
    if name not in measures:
        raise PGDLError(f"unknown measure {name!r}; available: {', '.join(sorted(measures))}")
    return measures[name]


def _check_param_names(name: str, cls: type, names) -> None:
    unknown = set(names) - set(cls.param_names())
    if unknown:
        raise PGDLError(f"measure {name!r} has no parameter {', '.join(sorted(unknown))}; "
                        f"its parameters: {', '.join(cls.param_names()) or 'none'}")


def param_types(cls: type) -> dict[str, Any]:
    """A measure class's parameters -> their declared type: the constructor's annotation, else
    the type of the default (None when neither says)."""
    import inspect
    import typing

    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - a plugin's annotation that does not resolve: use the defaults
        hints = {}
    out: dict[str, Any] = {}
    for param in inspect.signature(cls.__init__).parameters.values():
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        declared = hints.get(param.name)
        if declared is None and param.default is not param.empty and param.default is not None:
            declared = type(param.default)
        out[param.name] = declared
    return out


def parse_typed_param(text: str, declared: Any, where: str):
    """A command-line value read by its parameter's declared type (see :func:`param_types`).

    ``bool``: ``true``/``false`` (any case); ``int``: an integer; ``float``: a number (an integer
    stays one); ``str``: the text (JSON quotes removed); ``tuple``/``list``: a JSON list; ``X |
    None``: also ``null``/``None``; any other or no type: :func:`parse_param_value`.

    Args:
        text: the value as typed.
        declared: the declared type.
        where: what to name in the error (``"--param agn.max_examples"``).

    Raises:
        PGDLError: a value the type does not accept.
    """
    import types
    import typing

    text = text.strip()
    origin = typing.get_origin(declared)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(declared) if a is not type(None)]
        if text in ("null", "None") and len(args) < len(typing.get_args(declared)):
            return None
        declared = args[0] if len(args) == 1 else None
        origin = typing.get_origin(declared)
    value = parse_param_value(text)
    if declared is bool:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise PGDLError(f"{where}={text}: expected true or false")
    if declared is int:
        if is_int(value):
            return value
        raise PGDLError(f"{where}={text}: expected an integer")
    if declared is float:
        if is_number(value):
            return value
        raise PGDLError(f"{where}={text}: expected a number")
    if declared is str:
        return value if isinstance(value, str) else text
    if declared in (tuple, list) or origin in (tuple, list):
        if isinstance(value, list):
            return value
        raise PGDLError(f"{where}={text}: expected a JSON list, e.g. [\"a\", \"b\"]")
    return value


def parse_param_options(options: Iterable[str], *, measure: str | None = None) -> dict[str, Any]:
    """Parse ``--param`` options, each value by its parameter's declared type.

    The one parser of the command line's measure parameters (``pgdl evaluate`` and ``pgdl
    package``). Values are read by :func:`parse_typed_param` with the type the measure's
    constructor declares (:func:`param_types`), so ``use_input_size=banana`` is refused.

    Args:
        options: ``NAME.key=value`` strings, or ``key=value`` when `measure` is given.
        measure: the measure every option belongs to (``pgdl package MEASURE``).

    Returns:
        ``{NAME: {key: value}}``, or ``{key: value}`` when `measure` is given.

    Raises:
        PGDLError: a malformed option, a parameter given twice, an unknown measure or
            parameter, a value its parameter's type does not accept.
    """
    form = "key=value (e.g. max_examples=500)" if measure else "NAME.key=value (e.g. agn.max_examples=500)"
    parsed: dict[str, dict[str, Any]] = {}
    for option in options:
        target, eq, text = option.partition("=")
        if measure is None:
            name, dot, key = target.partition(".")
        else:
            name, dot, key = measure, ".", target
        name, key = name.strip(), key.strip()
        if not (eq and dot and name and key):
            raise PGDLError(f"--param {option!r}: expected {form}")
        if key in parsed.get(name, {}):
            raise PGDLError(f"--param {key if measure else f'{name}.{key}'} given twice")
        cls = _measure_class(name)
        _check_param_names(name, cls, [key])
        where = f"--param {key if measure else f'{name}.{key}'}"
        parsed.setdefault(name, {})[key] = parse_typed_param(text, param_types(cls).get(key), where)
    return parsed.get(measure, {}) if measure else parsed


def get_measure(name: str, **params):
    """Instantiate the measure `name` with keyword `params`.

    Raises:
        PGDLError: unknown name or parameter.
    """
    cls = _measure_class(name)
    _check_param_names(name, cls, params)
    return cls(**params)
