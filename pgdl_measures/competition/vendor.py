"""Vendoring the toolkit's code into a submission: which modules it needs, and their source with
every reference to the toolkit renamed.

* :func:`module_closure`: the modules reachable from some start modules through ``import``
  statements anywhere in a module (module level or inside a function) and string literals
  naming a toolkit module (``"pgdl_measures.autodiff.tensorflow"``), with the packages above
  each; which of them are imported when the submission is imported (eager), and the
  third-party packages those import;
* :func:`rewrite_source` / :func:`rewrite_own`: a module's source with ``pgdl_measures``
  (``scoring``) turned into ``pgdl_vendored`` (``pgdl_vendored._scoring``), everything else kept
  byte for byte; a reference it cannot rewrite is an error, not a broken zip;
* :func:`competition_environment` / :func:`environment_warnings`: the import names of
  TensorFlow and its dependencies (what the competition's environment had), and the eager
  third-party imports outside it.

:mod:`pgdl_measures.competition.package` assembles the zip from these.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from pgdl_measures.errors import PGDLError

#: the toolkit's import name, and the name its vendored copy gets inside a submission
TOOLKIT = "pgdl_measures"
VENDORED = "pgdl_vendored"
#: the toolkit's own packages: import name -> the name of its vendored copy inside a submission
#: (``scoring`` holds the project's exception type, which every toolkit module raises)
OWN_PACKAGES = {TOOLKIT: VENDORED, "scoring": f"{VENDORED}._scoring"}
#: what the competition's environment was built on
ENVIRONMENT_ROOT = "tensorflow"

# ------------------------------------------------------------------------------ finding modules


def _module_name_pattern(package: str) -> re.Pattern:
    """A string naming a module of `package` (``"package.x.y"``, ``"package.x:Attr"``)."""
    return re.compile(rf"^{re.escape(package)}(\.[A-Za-z_]\w*)*(:[A-Za-z_][\w.]*)?$")


_MODULE_NAME = _module_name_pattern(TOOLKIT)


def own_roots() -> dict[str, Path]:
    """Import name -> folder, for each of :data:`OWN_PACKAGES`."""
    import importlib

    return {name: Path(importlib.import_module(name).__file__).resolve().parent for name in OWN_PACKAGES}


@functools.lru_cache(maxsize=512)
def rewrite_own(text: str, *, filename: str = "<source>") -> str:
    """`text` with every reference to one of :data:`OWN_PACKAGES` turned into its vendored name
    (remembered: packaging several measures rewrites the same toolkit modules once)."""
    for old, new in OWN_PACKAGES.items():
        text = rewrite_source(text, old, new, filename=filename)
    return text


def vendored_path(module: str, path: Path, roots: dict[str, Path]) -> str:
    """The archive name of the vendored copy of `module` (file `path`)."""
    top = module.split(".")[0]
    relative = path.relative_to(roots[top]).as_posix()
    return "/".join(OWN_PACKAGES[top].split(".") + [relative])


@dataclass
class _Source:
    """One Python module to vendor: its name, file, and whether it is a package."""

    name: str
    path: Path
    is_package: bool


class Locator:
    """Module name -> source file, for the toolkit and (when given) a plugin's top level."""

    def __init__(self, roots: dict[str, Path]):
        self.roots = roots  # top-level name -> folder of the package, or the module's .py file

    def find(self, name: str) -> _Source | None:
        top, *rest = name.split(".")
        root = self.roots.get(top)
        if root is None:
            return None
        if root.is_file():
            return _Source(name, root, False) if not rest else None
        folder = root.joinpath(*rest)
        if (folder / "__init__.py").is_file():
            return _Source(name, folder / "__init__.py", True)
        module = folder.with_suffix(".py") if rest else None
        if module is not None and module.is_file():
            return _Source(name, module, False)
        return None


@dataclass
class _Refs:
    """What a module refers to: modules of the locator's packages, imported when it is imported
    (eager) or later; third-party top-level packages imported when it is imported."""

    eager: set[str] = field(default_factory=set)
    lazy: set[str] = field(default_factory=set)
    third_party: set[str] = field(default_factory=set)
    imported_names: dict[str, set[str]] = field(default_factory=dict)  # module -> names taken from it


def _resolve_relative(module: _Source, level: int, name: str | None) -> str:
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    parts = package.split(".")
    if level > 1:
        parts = parts[:len(parts) - (level - 1)]
    base = ".".join(parts)
    return f"{base}.{name}" if name else base


def _docstring_ids(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def _module_references(source: _Source, tree: ast.AST, locator: Locator) -> _Refs:
    refs = _Refs()

    def add(name: str, eager: bool, names: Iterable[str] = ()) -> None:
        top = name.split(".")[0]
        if top not in locator.roots:
            if eager:
                refs.third_party.add(top)
            return
        if locator.find(name) is not None:
            (refs.eager if eager else refs.lazy).add(name)
        for item in names:  # `from package import module`
            if locator.find(f"{name}.{item}") is not None:
                (refs.eager if eager else refs.lazy).add(f"{name}.{item}")
            else:
                refs.imported_names.setdefault(name, set()).add(item)

    def visit(node: ast.AST, eager: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, eager)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = _resolve_relative(source, node.level, node.module)
            if module != "__future__":
                add(module, eager, [a.name for a in node.names if a.name != "*"])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.match(node.value):
            add(node.value.partition(":")[0], False)
        inner = eager and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, True)
    return refs


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@dataclass
class Closure:
    sources: dict[str, _Source]
    texts: dict[str, str]  # the source to vendor
    eager: set[str]  # modules imported when complexity.py is imported
    refs: dict[str, _Refs]


def module_closure(roots: Sequence[tuple[str, bool]], locator: Locator) -> Closure:
    """Every module of the locator's packages reachable from `roots` ((name, imported when
    complexity.py is imported) pairs), with the packages above each (see the module docstring)."""
    closure = Closure({}, {}, set(), {})
    pending = list(roots)
    while pending:
        name, eager = pending.pop()
        if name in (closure.eager if eager else closure.sources):
            continue
        pending.extend((parent, eager) for parent in _parents(name))
        source = locator.find(name)
        if source is None:
            raise PGDLError(f"module {name} is imported but is not among the files to vendor "
                            f"({', '.join(str(p) for p in locator.roots.values())})")
        if eager:
            closure.eager.add(name)
        if name not in closure.sources:
            text = source.path.read_text(encoding="utf-8")
            try:
                tree = ast.parse(text, filename=str(source.path))
            except SyntaxError as exc:
                raise PGDLError(f"cannot parse {name}: {exc.msg} (line {exc.lineno})", source.path) from None
            closure.sources[name], closure.texts[name] = source, text
            closure.refs[name] = _module_references(source, tree, locator)
        pending.extend((m, eager) for m in closure.refs[name].eager)
        pending.extend((m, False) for m in closure.refs[name].lazy)
    return closure


# ------------------------------------------------------------------------------ the environment


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


@functools.cache
def competition_environment(root: str = ENVIRONMENT_ROOT) -> frozenset[str]:
    """The top-level import names of `root`'s distribution and all it requires (installed here).

    The competition's environment held TensorFlow and its dependencies (plus the standard
    library); this is today's equivalent. Empty when `root` is not installed.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    seen: set[str] = set()
    pending = [root]
    while pending:
        name = _normalise(pending.pop())
        if name in seen:
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for line in requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                pending.append(req.name)
    return frozenset(module for module, dists in metadata.packages_distributions().items()
                     if any(_normalise(d) in seen for d in dists))


# ------------------------------------------------------------------------------ rewriting


def _offsets(data: bytes) -> list[int]:
    starts = [0]
    for index, byte in enumerate(data):
        if byte == 0x0A:
            starts.append(index + 1)
    return starts


def rewrite_source(text: str, old: str = TOOLKIT, new: str = VENDORED, *, filename: str = "<source>") -> str:
    """Python source `text` with every reference to package `old` turned into `new`.

    * ``from old.x import y`` -> ``from new.x import y`` (relative imports are left alone);
    * ``import old.x as z`` -> ``import new.x as z``; ``import old.x`` (which binds the name
      ``old``) -> ``import new.x, new as old``, so ``old.x.f()`` in the code still works;
    * a string literal naming a module, ``"old.x"`` or ``"old.x:Attr"`` -> ``"new.x..."``
      (docstrings are left alone).

    Everything else, comments and layout included, is kept byte for byte.

    Raises:
        PGDLError: `text` does not parse, or still refers to `old` afterwards in a way this
            cannot rewrite (a module name assembled at run time, say).
    """
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError as exc:
        raise PGDLError(f"cannot parse: {exc.msg} (line {exc.lineno})", filename) from None
    data = text.encode("utf-8")
    starts = _offsets(data)

    def span(node: ast.AST) -> tuple[int, int]:
        return starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + node.end_col_offset

    def renamed(name: str) -> str:
        return new + name[len(old):]

    def ours(name: str | None) -> bool:
        return bool(name) and (name == old or name.startswith(old + "."))

    module_name = _module_name_pattern(old)

    edits: list[tuple[int, int, bytes]] = []
    docstrings = _docstring_ids(tree)
    in_fstring = {id(c) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for c in ast.walk(n)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(ours(a.name) for a in node.names):
            parts = []
            for alias in node.names:
                if not ours(alias.name):
                    parts.append(alias.name + (f" as {alias.asname}" if alias.asname else ""))
                elif alias.asname:
                    parts.append(f"{renamed(alias.name)} as {alias.asname}")
                elif alias.name == old:
                    parts.append(f"{new} as {old}")
                else:
                    parts.append(f"{renamed(alias.name)}, {new} as {old}")
            edits.append((*span(node), ("import " + ", ".join(parts)).encode()))
        elif isinstance(node, ast.ImportFrom) and not node.level and ours(node.module):
            start, end = span(node)
            statement = re.sub(rb"^from(\s+)" + re.escape(old.encode()), b"from\\1" + new.encode(), data[start:end])
            edits.append((start, end, statement))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
              and id(node) not in in_fstring and module_name.match(node.value)):
            start, end = span(node)
            literal = data[start:end]  # keep the literal's own quotes when it spells the name out
            replacement = (literal.replace(old.encode(), new.encode(), 1) if old.encode() in literal
                           else repr(renamed(node.value)).encode())
            edits.append((start, end, replacement))
    for start, end, replacement in sorted(edits, reverse=True):
        data = data[:start] + replacement + data[end:]
    result = data.decode("utf-8")
    _check_rewritten(result, old, filename)
    return result


def _check_rewritten(text: str, old: str, filename: str) -> None:
    tree = ast.parse(text, filename=filename)
    docstrings = _docstring_ids(tree)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value == old or node.value.startswith((old + ".", old + ":")):
                names = [node.value]
        for name in names:
            if name == old or name.startswith((old + ".", old + ":")):
                raise PGDLError(f"line {node.lineno} refers to {name!r} in a way `pgdl package` cannot "
                                f"rewrite to the vendored {VENDORED!r} (e.g. a module name built at run "
                                "time): use a literal module name or an import statement", filename)



# ------------------------------------------------------------------------------ the environment's warnings


def environment_warnings(closure: Closure, own: set[str]) -> list[str]:
    environment = competition_environment()
    if not environment:
        return [f"{ENVIRONMENT_ROOT} is not installed here: the imports of the vendored code were not checked"]
    allowed = environment | set(sys.stdlib_module_names) | own | {"__future__"}
    out = []
    for module in sorted(closure.eager):
        missing = sorted(closure.refs[module].third_party - allowed)
        if missing:
            out.append(f"{module} imports {', '.join(missing)} when imported, which is not among TensorFlow's "
                       "dependencies: the competition's environment may lack it")
    return out
