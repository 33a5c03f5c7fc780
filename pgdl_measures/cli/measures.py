"""`pgdl measures ...`: list the measures (built-ins and plugins), scaffold a plugin (a thin
shell over :mod:`pgdl_measures.registry` and :mod:`pgdl_measures.scaffold`)."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import click


def describe(name: str, cls: type) -> dict[str, Any]:
    """One measure's metadata as a JSON-ready dict (what `pgdl measures list` shows)."""
    from pgdl_measures.registry import measure_origin

    params = {p.name: p.default for p in list(inspect.signature(cls.__init__).parameters.values())[1:]}
    return {
        "name": name,
        "summary": cls.summary,
        "direction": cls.direction,
        "needs_train_data": cls.needs_train_data,
        "needs_initial_weights": cls.needs_initial_weights,
        "backends": list(cls.backends),
        "reference": cls.reference,
        "params": params,
        "origin": measure_origin(name),
    }


def _load_measures() -> dict[str, type]:
    """The registry's measures; plugin warnings (a broken plugin, a duplicate) go to stderr."""
    from pgdl_measures.registry import available_measures

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        measures = available_measures()
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    return measures


@click.group()
def measures():
    """List complexity measures or scaffold a new plugin."""


@measures.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the measures as a JSON list.")
def list_measures(as_json):
    """List every measure, built-in or plugin: name, direction, needs, backends, summary, reference.

    Direction +1 means a larger value predicts a larger generalization gap. Plugins are
    packages that register a measure in the `pgdl_measures.measures` entry-point group; one
    that fails to load is reported as a warning and left out.
    """
    import json

    rows = [describe(name, cls) for name, cls in _load_measures().items()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=repr))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Complexity measures (dir +1: a larger value predicts a larger gap)", title_justify="left",
                  show_lines=True)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("dir", justify="right", no_wrap=True)
    table.add_column("needs", no_wrap=True)
    table.add_column("backends", no_wrap=True)
    table.add_column("summary / reference", overflow="fold")
    for row in rows:
        needs = [label for key, label in (("needs_train_data", "train data"), ("needs_initial_weights", "init weights"))
                 if row[key]]
        name = row["name"] if row["origin"] == "built-in" else f"{row['name']}\n[dim]{row['origin']}[/dim]"
        table.add_row(name, f"{row['direction']:+d}", "\n".join(needs) or "-", "\n".join(row["backends"]),
                      f"{escape(row['summary'])}\n[dim]{escape(row['reference'])}[/dim]")
    Console().print(table)


@measures.command("new")
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--package", default=None, metavar="MODULE",
              help="Import package of the plugin (default: pgdl_NAME).")
def new(name, directory, package):
    """Write a ready plugin package for a new measure NAME into DIRECTORY.

    The package holds setup.cfg (registering NAME in the pgdl_measures.measures entry-point
    group), pyproject.toml, the measure's module (a working example to edit) and a test that
    runs the toolkit's contract suite. It installs and passes its test unchanged:

    \b
        pgdl measures new weight_norm ./pgdl-weight-norm
        pip install ./pgdl-weight-norm && pytest ./pgdl-weight-norm
    """
    from pgdl_measures.scaffold import PluginNames, write_plugin

    names = PluginNames.for_measure(name, package)
    written = write_plugin(name, directory, package=package)
    click.echo(f"Wrote the {names.dist_name} plugin for measure {name!r} ({names.package}.{names.module}:"
               f"{names.class_name}):")
    for path in written:
        click.echo(f"  {path}")
    click.echo("Next: edit the measure module, then\n"
               f"  pip install {directory}\n"
               f"  pytest {directory}    # the contract suite; once more with KERAS_BACKEND=jax\n"
               f"  pgdl measures list    # lists {name}")
