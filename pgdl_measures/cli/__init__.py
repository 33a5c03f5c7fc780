"""The `pgdl` command line: a thin shell over the library.

Each sub-command lives in its own module of this package and is imported only when it runs,
so `pgdl --help` does not pay for importing TensorFlow. Errors a user can cause
(:class:`pgdl_measures.PGDLError`) are printed without a traceback and exit with status 2;
Ctrl-C prints one line and exits with status 130.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import signal
import sys
import threading

import click

from pgdl_measures import __version__
from pgdl_measures.errors import PGDLError

# command name -> (module under pgdl_measures.cli, attribute, one-line help shown by `pgdl --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "task": ("task", "task", "Inspect PGDL tasks (competition dataset folders)."),
    "zoo": ("zoo", "zoo", "Train a grid of models and write a PGDL-format task."),
    "experiment": ("experiment", "experiment", "Run the AGN/GN study's measurement experiments (JSON + PNG)."),
    "measures": ("measures", "measures", "List complexity measures or scaffold a new plugin."),
    "evaluate": ("evaluate", "evaluate", "Compute measures on tasks, rank them, write a report."),
    "score": ("score", "score", "Score .predict files against reference data (competition CMI)."),
    "data": ("data", "data", "Download the competition's public data."),
    "package": ("package", "package", "Package a measure as a competition submission zip."),
    "run-submission": ("run_submission", "run_submission",
                       "Run a competition submission on tasks, as the ingestion program did."),
    "search": ("search", "search", "Hyper-parameter search with AGN objectives on a Dask cluster."),
    "meta": ("meta", "meta", "Fit a combination of measures on a benchmark of tasks (a meta-measure)."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name):
        module = COMMANDS[name][0]
        return importlib.util.find_spec(f"pgdl_measures.cli.{module}") is not None

    def get_command(self, ctx, name):
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(f"pgdl_measures.cli.{module}"), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pgdl")
def cli():
    """PGDL toolkit: will this trained network generalize, and which measure predicts it best?

    Reads tasks in the format of the NeurIPS 2020 "Predicting Generalization in Deep Learning"
    competition, computes complexity measures (AGN, gradient norm, VC dimension, ...), and ranks
    them with the competition's conditional mutual information and better-behaved rankers.
    """


#: sub-commands that import Keras (and so TensorFlow, with the default backend).
_KERAS_COMMANDS = {"task", "zoo", "experiment", "measures", "evaluate", "package"}


@contextlib.contextmanager
def _sigint_deferred():
    """Hold Ctrl-C until the block ends, then raise it: some modules imported with Keras catch
    every exception around an optional import, which would swallow a KeyboardInterrupt raised there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _import_keras_quietly() -> None:
    """Import Keras with the C++ start-up chatter of TensorFlow (written to fd 2) silenced.

    TensorFlow prints oneDNN and CUDA notices before its logging is configured, whatever
    TF_CPP_MIN_LOG_LEVEL says, and a "failed call to cuInit" error when it first looks for GPUs
    on a machine without a GPU driver: the devices are listed here, silenced, so that happens
    now. A failing import is retried unsilenced so its error shows.
    """
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull, _sigint_deferred():
            os.dup2(devnull.fileno(), 2)
            try:
                import keras  # noqa: F401

                if keras.backend.backend() == "tensorflow":
                    import tensorflow as tf

                    tf.config.list_physical_devices("GPU")
            except Exception:  # noqa: BLE001 - shown by the unsilenced retry below
                pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import keras  # noqa: F401,F811


def _keras_import_error(exc: Exception) -> PGDLError:
    """The one-line error for a Keras that cannot be imported (an unknown or missing backend)."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        where = f"KERAS_BACKEND={chosen!r}"
    else:
        home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
        where = f"the backend set in {os.path.join(home, 'keras.json')}"
    message = " ".join(str(exc).split())
    return PGDLError(f"cannot import Keras with {where} ({type(exc).__name__}: {message}); set "
                     "KERAS_BACKEND to an installed backend (tensorflow or jax), or unset it")


def main(argv=None):
    """Console-script entry point: run the CLI, turning PGDLError into exit status 2 and Ctrl-C
    (at any point, the Keras import included) into one line and exit status 130."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = sys.argv[1:] if argv is None else list(argv)
    words = [a for a in args if not a.startswith("-")]
    try:
        if words and words[0] in _KERAS_COMMANDS and not {"-h", "--help"} & set(args):
            try:
                _import_keras_quietly()
            except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, ImportError, ...
                raise _keras_import_error(exc) from None
        # a command's `raise click.exceptions.Exit(code)` comes back as `code` (standalone_mode=False)
        code = cli.main(args=argv, prog_name="pgdl", standalone_mode=False)
    except PGDLError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # Ctrl-C outside click's own handling, e.g. while TensorFlow imports
        click.echo("Aborted.", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
