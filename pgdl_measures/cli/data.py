"""`pgdl data`: download the competition's data archives (a thin shell over
:mod:`pgdl_measures.tasks.download`)."""

from __future__ import annotations

import click

from pgdl_measures.cli._options import AliasOption
from pgdl_measures.tasks import download as dl


class TransferBars(dl.TransferProgress):
    """The download's progress drawn with rich: one bar per step (download, checksum, unpacking)
    with bytes, speed and time left, on stderr; names and notes shown as plain text."""

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._bar = self._task = None

    def start(self, description, total):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(),
                             DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(), console=self.console)
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def update(self, *, completed=None, total=None, description=None):
        changes = {"completed": completed, "total": total, "description": description}
        self._bar.update(self._task, **{k: v for k, v in changes.items() if v is not None})

    def advance(self, amount):
        self._bar.advance(self._task, amount)

    def stop(self):
        if self._bar is not None:
            self._bar.stop()
        self._bar = self._task = None

    def note(self, message):
        from rich.text import Text

        self.console.print(Text(message, style="yellow"), highlight=False)


@click.group()
def data():
    """Download the competition's data archives."""


@data.command()
@click.argument("name", type=click.Choice(list(dl.ARCHIVES)), default="public")
@click.option("--out", "-o", "--dest", "dest", cls=AliasOption, hidden_aliases=("--dest",),
              type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder that receives <name>_data.zip and the unpacked <name>/.")
@click.option("--url", envvar=dl.BASE_URL_ENV, default=None, metavar="URL",
              help=f"Base URL of a mirror holding <name>_data.zip (or the archive's own URL); "
                   f"default ${dl.BASE_URL_ENV} or {dl.DEFAULT_BASE_URL}.")
@click.option("--sha256", default=None, metavar="HEX", help="Expected SHA-256 of the archive.")
@click.option("--size", type=click.IntRange(min=0), default=None, metavar="BYTES",
              help="Expected exact size of the archive in bytes.")
@click.option("--unpack/--no-unpack", default=True, show_default=True,
              help="Unpack the archive after downloading it.")
@click.option("--remove-archive", is_flag=True, help="Delete the zip once unpacked.")
@click.option("--overwrite", is_flag=True, help="Replace an existing unpacked <name>/ folder.")
@click.option("--retries", type=click.IntRange(min=0), default=5, show_default=True,
              help="Failed requests in a row (without new data) tolerated before giving up.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, help="Seconds to wait for the server.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def download(name, dest, url, sha256, size, unpack, remove_archive, overwrite, retries, timeout,
             quiet):
    """Download archive NAME (public, phase_one or phase_two) and unpack it into OUT/NAME.

    The archive goes to OUT/NAME_data.zip through a .part file: an interrupted download is
    resumed when the command runs again, and a complete one is not fetched twice. The size and
    SHA-256 are checked when known. Unpacking refuses unsafe archives (absolute paths, '..',
    links) before writing anything and leaves OUT/NAME/input_data/<task>/ and
    OUT/NAME/reference_data/<task>/ ready for `pgdl task` and `pgdl evaluate`.

    Example: pgdl data download public --out ~/pgdl_data
    """
    target = dl.archive_url(name, url)
    if not quiet:
        click.echo(f"{dl.describe(name)} from {target} into {dest}", err=True)
    result = dl.download_data(
        name, dest, base_url=url, size=size, sha256=sha256, unpack=unpack,
        keep_archive=not remove_archive, overwrite=overwrite, progress=None if quiet else TransferBars(),
        retries=retries, timeout=timeout,
    )
    if result.file is None:
        click.echo(f"{result.folder} is already unpacked; nothing to do "
                   f"(--overwrite to unpack again).")
        return
    verb = "downloaded" if result.file.downloaded else "already downloaded"
    line = f"{result.file.path}: {verb}, {result.file.size} bytes"
    if result.file.sha256:
        line += f", sha256 {result.file.sha256}"
    click.echo(line)
    if result.folder is not None:
        click.echo(f"unpacked into {result.folder}")
        for sub in result.missing:
            click.echo(f"warning: the archive has no {sub}/ folder", err=True)
