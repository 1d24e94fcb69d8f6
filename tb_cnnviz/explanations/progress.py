"""Progress bars for long standalone work (a sanity check, a many-pass method, a replay): Keras'
own Progbar, shown where standard output is a terminal unless asked otherwise."""

import sys

import keras


def progress_bars(verbose, unit: str):
    """A maker of progress bars, (total) -> keras.utils.Progbar counting `unit`s, or None for
    none: `verbose` "auto" shows them where standard output is a terminal, True always, False never."""
    if verbose == "auto":
        verbose = bool(getattr(sys.stdout, "isatty", None) and sys.stdout.isatty())
    if not isinstance(verbose, (bool, int)) or verbose not in (0, 1):
        raise ValueError(f"verbose must be 'auto', True or False, got {verbose!r}")
    return (lambda total: keras.utils.Progbar(total, unit_name=unit)) if verbose else None
