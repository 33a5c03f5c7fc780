"""Write a ready-to-install measure plugin package from the templates in ``templates/plugin``.

The package has a ``setup.cfg`` that registers the measure in the ``pgdl_measures.measures``
entry-point group, a ``pyproject.toml``, the measure module (a working example to edit) and a
test that runs the contract suite (:mod:`pgdl_measures.testing`). It installs with
``pip install DIR`` and passes its test unchanged.
"""

from __future__ import annotations

import keyword
import os
import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pgdl_measures import __version__
from pgdl_measures.errors import PGDLError

_SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_TEMPLATE_SUFFIX = ".tmpl"


@dataclass(frozen=True)
class PluginNames:
    """The names a plugin package is written with.

    Attributes:
        name: the measure's name (snake_case), also the entry point's name.
        package: the import package (``pgdl_<name>`` by default).
        module: the measure's module inside the package (``<name>``).
        class_name: the measure class (``<name>`` in CamelCase).
        dist_name: the distribution name pip installs (``pgdl-<name>`` with dashes).
    """

    name: str
    package: str
    module: str
    class_name: str
    dist_name: str

    @classmethod
    def for_measure(cls, name: str, package: str | None = None) -> PluginNames:
        """The default names for measure `name`; `package` overrides the import package.

        Raises:
            PGDLError: `name` is not snake_case, or `package` is not a valid module name.
        """
        if not _SNAKE_CASE.match(name) or keyword.iskeyword(name):
            raise PGDLError(f"measure name {name!r} must be a snake_case noun, e.g. 'weight_norm' "
                            "(lower-case letters, digits and single underscores, starting with a letter)")
        from pgdl_measures.registry import ALL

        if name == ALL:
            raise PGDLError(f"measure name {name!r} is reserved (`--measure {ALL}` selects every measure); "
                            "choose another name")
        package = package or f"pgdl_{name}"
        if not package.isidentifier() or keyword.iskeyword(package):
            raise PGDLError(f"package name {package!r} is not a valid Python module name, e.g. 'pgdl_{name}'")
        shadowed = _importable(package)
        if shadowed:
            raise PGDLError(f"package name {package!r} would shadow {shadowed}; choose another "
                            f"(--package), e.g. 'pgdl_{name}_measure'")
        class_name = "".join(part.capitalize() for part in name.split("_"))
        return cls(name, package, name, class_name, package.replace("_", "-"))

    def substitutions(self) -> dict[str, str]:
        return {"name": self.name, "package": self.package, "module": self.module, "class_name": self.class_name,
                "dist_name": self.dist_name, "pgdl_version": __version__}


def _importable(package: str) -> str | None:
    """What importing `package` gives today, in words (None: nothing, so the name is free)."""
    import importlib.util
    import sys

    if package in sys.stdlib_module_names:
        return f"the standard library's module {package!r}"
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    return f"the importable module {package!r} ({spec.origin or ', '.join(spec.submodule_search_locations or [])})"


def template_files() -> list[tuple[str, str]]:
    """The plugin templates as ``(relative path, text)``, read from the installed package."""
    root = resources.files("pgdl_measures") / "templates" / "plugin"
    found: list[tuple[str, str]] = []

    def walk(node, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            elif child.name.endswith(_TEMPLATE_SUFFIX):
                found.append((rel, child.read_text(encoding="utf-8")))

    walk(root, "")
    if not found:
        raise PGDLError("the plugin templates are missing from this installation (reinstall pgdl-measures)", str(root))
    return found


def render_path(template_path: str, names: PluginNames) -> str:
    """``__package__/__module__.py.tmpl`` -> ``pgdl_x/x.py`` (placeholders in path parts)."""
    path = template_path[: -len(_TEMPLATE_SUFFIX)]
    return path.replace("__package__", names.package).replace("__module__", names.module)


def write_plugin(name: str, directory: str | os.PathLike, *, package: str | None = None) -> list[Path]:
    """Write a measure plugin package for measure `name` into `directory`.

    Args:
        name: the new measure's name (snake_case).
        directory: where to write; created if missing, and must be empty if it exists.
        package: the import package name (default ``pgdl_<name>``).

    Returns:
        The files written, in order.

    Raises:
        PGDLError: a bad name (not snake_case, reserved like ``all``, already registered, or a
            package that would shadow an importable module such as ``os``), a non-empty
            `directory`, or one that cannot be written. Nothing is written unless every file is.
    """
    from pgdl_measures.registry import available_measures

    names = PluginNames.for_measure(name, package)
    if name in available_measures():
        raise PGDLError(f"a measure named {name!r} is already registered; choose another name "
                        "(`pgdl measures list` shows the names in use)")
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise PGDLError("exists and is not an empty folder; choose a new folder for the plugin", directory)
    rendered = [(render_path(rel, names), string.Template(text).substitute(names.substitutions()))
                for rel, text in template_files()]
    return _write_all(directory, rendered)


def _write_all(directory: Path, rendered: list[tuple[str, str]]) -> list[Path]:
    """Write every file into a temporary folder beside `directory`, then rename it into place:
    `directory` gets all the files or none (folders created for it are removed on failure)."""
    import shutil
    import tempfile

    missing = [folder for folder in directory.absolute().parents if not folder.exists()]
    shown = directory  # the file named in an error, as it would be in `directory`
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name[:50]}.", dir=directory.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # a folder's usual mode, not mkdtemp's private 0o700
        try:
            for rel, text in rendered:
                shown = directory / rel
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                (staging / rel).write_text(text, encoding="utf-8")
            shown = directory
            os.replace(staging, directory)  # an empty existing folder is replaced too
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        if missing:
            shutil.rmtree(missing[-1], ignore_errors=True)  # the highest folder made for it
        raise PGDLError(f"cannot write the plugin here: {exc.strerror or exc}", shown) from None
    return [directory / rel for rel, _ in rendered]
