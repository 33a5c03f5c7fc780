"""The measure registry: built-ins, entry-point plugins from a real (fake) distribution, warnings."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.base import Measure
from pgdl_measures.registry import BUILTINS, ENTRY_POINT_GROUP, available_measures, get_measure, measure_origin

PLUGIN_MODULE = '''
from pgdl_measures.measures.base import Measure


class WeightCount(Measure):
    """Number of weight entries (a fake plugin measure)."""

    name = "weight_count"
    summary = "Number of weight entries"
    direction = 1
    needs_train_data = False
    reference = "test fixture"

    def __init__(self, *, scale: float = 1.0):
        self.scale = scale

    def compute(self, trained):
        return self.scale * sum(w.size for w in trained.model.get_weights())


class ImpostorVC(WeightCount):
    name = "vc_dimension"


class NotAMeasure:
    pass
'''


def make_distribution(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
    """Write an installed-looking distribution (``<dist>-0.1.dist-info`` + modules) under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    return root


@pytest.fixture
def plugin_path(tmp_path, monkeypatch, fresh_registry, request):
    """A directory on sys.path holding the distribution `fakeplugin` (entry points per test)."""
    tag = request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    module = f"fakeplugin_{tag}"

    def install(entry_points: dict[str, str], extra_modules: dict[str, str] | None = None):
        targets = {name: target.replace("MODULE", module) for name, target in entry_points.items()}
        modules = {module: PLUGIN_MODULE, **(extra_modules or {})}
        root = make_distribution(tmp_path / "site", "fakeplugin", modules, targets)
        monkeypatch.syspath_prepend(str(root))
        for name in [module, *(extra_modules or {})]:
            monkeypatch.delitem(sys.modules, name, raising=False)
        return module

    return install


def _plugin_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, RuntimeWarning) and "plugin" in str(w.message)]


def test_builtins_are_available_without_installation(fresh_registry):
    measures = fresh_registry()
    assert {"vc_dimension", "distance_from_init"} <= set(measures)
    builtins = [name for name in BUILTINS if name in measures]
    assert list(measures)[:len(builtins)] == builtins  # built-ins first, in BUILTINS order
    assert measure_origin("vc_dimension") == "built-in"


def test_loading_is_cached(fresh_registry):
    assert fresh_registry() is fresh_registry()


def test_plugin_from_entry_point_is_registered(plugin_path):
    module = plugin_path({"weight_count": "MODULE:WeightCount"})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        measures = available_measures()
    assert not _plugin_warnings(record)
    assert measures["weight_count"].__module__ == module
    measure = get_measure("weight_count", scale=2.0)
    assert measure.params == {"scale": 2.0}
    assert measure_origin("weight_count") == "fakeplugin"  # the distribution, not the module


def test_plugin_that_fails_to_import_is_a_warning_naming_its_package(plugin_path):
    plugin_path({"weight_count": "MODULE:WeightCount", "broken": "fakeplugin_broken_mod:Broken"},
                {"fakeplugin_broken_mod": "raise ImportError('needs torch, which is not installed')\n"})
    with pytest.warns(RuntimeWarning) as record:
        measures = available_measures()
    messages = _plugin_warnings(record)
    assert len(messages) == 1
    assert "'broken'" in messages[0] and "'fakeplugin'" in messages[0] and "needs torch" in messages[0]
    assert "broken" not in measures
    assert "weight_count" in measures and "vc_dimension" in measures  # the rest still load


def test_plugin_with_a_syntax_error_is_a_warning(plugin_path):
    plugin_path({"typo": "fakeplugin_typo_mod:Typo"}, {"fakeplugin_typo_mod": "def oops(:\n"})
    with pytest.warns(RuntimeWarning, match=r"'typo' from package 'fakeplugin' failed to load: SyntaxError"):
        measures = available_measures()
    assert "typo" not in measures


def test_missing_attribute_is_a_warning(plugin_path):
    plugin_path({"ghost": "MODULE:Ghost"})
    with pytest.warns(RuntimeWarning, match=r"'ghost' from package 'fakeplugin' failed to load"):
        assert "ghost" not in available_measures()


def test_duplicate_name_is_a_warning_and_the_builtin_keeps_it(plugin_path):
    from pgdl_measures.measures.vc_dimension import VCDimension

    plugin_path({"vc_dimension": "MODULE:ImpostorVC"})
    with pytest.warns(RuntimeWarning) as record:
        measures = available_measures()
    messages = _plugin_warnings(record)
    assert len(messages) == 1
    assert "'vc_dimension'" in messages[0] and "'fakeplugin'" in messages[0] and "duplicates" in messages[0]
    assert measures["vc_dimension"] is VCDimension


def test_entry_point_that_is_not_a_measure_is_a_warning(plugin_path):
    plugin_path({"not_a_measure": "MODULE:NotAMeasure"})
    with pytest.warns(RuntimeWarning, match=r"'not_a_measure' from package 'fakeplugin' is not a Measure subclass"):
        assert "not_a_measure" not in available_measures()


def test_warnings_are_given_once_then_cached(plugin_path):
    plugin_path({"ghost": "MODULE:Ghost"})
    with pytest.warns(RuntimeWarning):
        available_measures()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        available_measures()
    assert not _plugin_warnings(record)


def test_get_measure_unknown_name_lists_available(fresh_registry):
    with pytest.raises(PGDLError, match=r"unknown measure 'no_such_measure'; available: .*vc_dimension"):
        get_measure("no_such_measure")


def test_get_measure_unknown_parameter_lists_parameters(fresh_registry):
    with pytest.raises(PGDLError, match=r"has no parameter spatial; its parameters: use_input_size"):
        get_measure("vc_dimension", spatial=3)
    assert get_measure("vc_dimension", use_input_size=True).use_input_size is True


# ------------------------------------------------------------------------------ --param parsing


class Typed(Measure):
    """A measure with one parameter of each kind the command line reads."""

    name = "typed"

    def __init__(self, *, flag: bool = False, count: int = 3, limit: int | None = None, scale: float = 1.0,
                 label: str = "x", names: tuple = ("a",), anything=None):
        self.flag, self.count, self.limit, self.scale = flag, count, limit, scale
        self.label, self.names, self.anything = label, names, anything


@pytest.mark.parametrize("option, expected", [
    ("flag=true", True), ("flag=False", False), ("flag=TRUE", True),
    ("count=500", 500), ("limit=null", None), ("limit=None", None), ("limit=7", 7),
    ("scale=0.25", 0.25), ("scale=1e-3", 0.001), ("scale=2", 2),
    ("label=sgd", "sgd"), ('label="500"', "500"), ("label=500", "500"), ("label=a=b", "a=b"),
    ("names=[\"flip\", \"shift\"]", ["flip", "shift"]), ("anything=[1, 2]", [1, 2]), ("anything=word", "word"),
])
def test_param_values_are_read_by_their_declared_type(option, expected, monkeypatch):
    import pgdl_measures.registry as registry

    monkeypatch.setattr(registry, "_measure_class", lambda name: Typed)
    key = option.split("=")[0]
    value = registry.parse_param_options([option], measure="typed")[key]
    assert value == expected and type(value) is type(expected)
    assert registry.parse_param_options([f"typed.{option}"]) == {"typed": {key: expected}}


@pytest.mark.parametrize("option, message", [
    ("flag=banana", "expected true or false"), ("flag=1", "expected true or false"),
    ("count=1.5", "expected an integer"), ("count=true", "expected an integer"), ("limit=x", "expected an integer"),
    ("scale=fast", "expected a number"), ("names=flip", "expected a JSON list"),
])
def test_param_values_their_type_refuses_are_errors(option, message, monkeypatch):
    import pgdl_measures.registry as registry

    monkeypatch.setattr(registry, "_measure_class", lambda name: Typed)
    with pytest.raises(PGDLError, match=message):
        registry.parse_param_options([option], measure="typed")


def test_boolean_parameter_of_a_builtin_refuses_banana(fresh_registry):
    from pgdl_measures.registry import parse_param_options

    with pytest.raises(PGDLError, match=r"--param vc_dimension.use_input_size=banana: expected true or false"):
        parse_param_options(["vc_dimension.use_input_size=banana"])
    with pytest.raises(PGDLError, match=r"--param use_input_size=banana: expected true or false"):
        parse_param_options(["use_input_size=banana"], measure="vc_dimension")
    assert parse_param_options(["vc_dimension.use_input_size=true"]) == {"vc_dimension": {"use_input_size": True}}


@pytest.mark.parametrize("options, message", [
    (["agn.max_examples=1", "agn.max_examples=2"], "given twice"),
    (["sigma=0.05"], "NAME.key=value"), (["agn.max_examples"], "NAME.key=value"), ([".x=1"], "NAME.key=value"),
    (["agn.=1"], "NAME.key=value"), (["nope.x=1"], "unknown measure 'nope'"),
    (["agn.sigma=1"], "has no parameter sigma"),
])
def test_param_options_malformed_duplicated_or_unknown(options, message, fresh_registry):
    from pgdl_measures.registry import parse_param_options

    with pytest.raises(PGDLError, match=message):
        parse_param_options(options)


@pytest.mark.parametrize("options, message", [
    (["max_examples=1", "max_examples=2"], "given twice"), (["max_examples"], "key=value"), (["=3"], "key=value"),
])
def test_param_options_of_one_measure_malformed_or_duplicated(options, message, fresh_registry):
    from pgdl_measures.registry import parse_param_options

    with pytest.raises(PGDLError, match=message):
        parse_param_options(options, measure="agn")


def test_evaluate_and_package_share_the_parser():
    """One parser of --param: neither command keeps its own."""
    import pgdl_measures.cli.evaluate as evaluate_cli
    import pgdl_measures.cli.package as package_cli
    import pgdl_measures.competition.package as package
    import pgdl_measures.evaluate.pipeline as pipeline

    assert not hasattr(pipeline, "parse_params") and not hasattr(package, "parse_param_options")
    for module in (evaluate_cli, package_cli):
        assert "registry import parse_param_options" in Path(module.__file__).read_text()
