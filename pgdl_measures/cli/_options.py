"""Option spellings shared by every `pgdl` command, and their hidden old aliases.

One convention across commands:

* ``--out`` / ``-o``: the output path (a folder, or the zip of ``pgdl package``);
* ``--models``: repeatable, each value one id or several separated by commas;
* ``--quiet`` / ``-q``: no progress display;
* ``--param`` / ``-p``, ``--json``, ``--time-budget``: as in ``pgdl evaluate``.

An older spelling (``--output``, ``--dest``, ``--no-progress``) keeps working as a hidden
alias: it names the same option, and ``--help`` shows only the current spelling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import click


class AliasOption(click.Option):
    """A click option some of whose names are accepted but not shown by ``--help``.

    Use ``@click.option("--out", "-o", "--output", "out", cls=AliasOption,
    hidden_aliases=("--output",))``.
    """

    def __init__(self, *args, hidden_aliases: Sequence[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.hidden_aliases = tuple(hidden_aliases)
        unknown = set(self.hidden_aliases) - set(self.opts) - set(self.secondary_opts)
        if unknown:
            raise TypeError(f"hidden aliases {sorted(unknown)} are not names of the option {self.name!r}")

    def get_help_record(self, ctx):
        saved = self.opts, self.secondary_opts
        self.opts = [o for o in self.opts if o not in self.hidden_aliases]
        self.secondary_opts = [o for o in self.secondary_opts if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts, self.secondary_opts = saved


def split_ids(values: Iterable[str] | str | None) -> list[str]:
    """The ids of a repeatable, comma-separating option: ``("a,b", "c")`` -> ``["a", "b", "c"]``."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [item.strip() for value in values for item in value.split(",") if item.strip()]
