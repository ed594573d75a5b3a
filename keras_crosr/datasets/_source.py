"""Where a data set comes from: a local file in the layout of keras-crosr's ``DATA.md`` or tensorflow-datasets.

``source="local"`` reads ``<data_dir>/<file>`` where ``data_dir`` is the argument or ``$KERAS_CROSR_DATA``;
``source="tfds"`` loads the tensorflow-datasets build (downloaded by tfds into its own folder, never into
``data_dir``); ``source="auto"`` takes the local file when it exists and tfds otherwise. A data root that is set
(``data_dir=`` or ``$KERAS_CROSR_DATA``) but is not an existing folder is an error for ``"auto"`` and ``"local"``,
never a reason to go online. ``tensorflow`` and ``tensorflow_datasets`` are imported only on the tfds path. Loaders
only ever read from ``data_dir``.
"""

import contextlib
import contextvars
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

ENV_VAR = "KERAS_CROSR_DATA"
LAYOUT = "files laid out as in DATA.md of github.com/keras-crosr/keras-crosr"
ROOT_OPTIONS = f"data_dir= (command line: --data-dir) or the environment variable {ENV_VAR}"
SOURCES = ("auto", "tfds", "local")
_RECORDERS = contextvars.ContextVar("keras_crosr_source_recorders", default=())  # of the open recording() blocks


@contextlib.contextmanager
def recording():
    """Collects, inside the block, where each data set was resolved to be read from: ``{dataset: "local FILE"}``
    (the file relative to the data root, which may move between machines) or ``{dataset: "tfds NAME"}``.
    Blocks nest (the outer one collects what the inner ones do) and are local to their thread."""
    used = {}
    token = _RECORDERS.set(_RECORDERS.get() + (used,))
    try:
        yield used
    finally:
        _RECORDERS.reset(token)


def _resolved(dataset, kind, where, description):
    for used in _RECORDERS.get():
        used[dataset] = f"{kind} {description}"
    return kind, where


class DatasetNotFoundError(FileNotFoundError):
    """Raised when neither a local file nor tensorflow-datasets can serve a data set."""


def data_root(data_dir=None):
    """The local data root: ``data_dir`` if given, else ``$KERAS_CROSR_DATA``, else ``None``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else None


def _check_source(source):
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")


def _tfds_importable():
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError:
        return False
    return True


def _missing_message(dataset, filename, root):
    where = f"{root / filename}" if root is not None else f"<data_dir>/{filename} (no data_dir given)"
    return (
        f"{dataset}: local file not found: {where}. Set {ROOT_OPTIONS} to a folder holding {filename!r} "
        f"({LAYOUT})"
    )


def _with_hint(message, hint):
    return f"{message}; {hint}" if hint else message


def resolve(dataset, filename, *, source="auto", data_dir=None, tfds_name=None, hint=None):
    """Decides where ``dataset`` is read from.

    Args:
        dataset: human-readable name used in error messages, e.g. ``"MNIST"``.
        filename: the local file or folder, relative to the data root, e.g. ``"mnist.npz"``.
        source: ``"auto"``, ``"tfds"`` or ``"local"``.
        data_dir: local data root; defaults to ``$KERAS_CROSR_DATA``.
        tfds_name: the tensorflow-datasets name, or ``None`` when tfds does not provide the data set.
        hint: optional advice added to the errors that a local file is missing, e.g. how to make it.

    ``"auto"`` goes to tfds quietly when no data root is set, and with a ``UserWarning`` naming the missing file
    when an existing data root lacks it.

    Returns:
        ``("local", path)`` or ``("tfds", tfds_name)``.

    Raises:
        DatasetNotFoundError: when the chosen source cannot serve the data set, or when the data root is set but
            is not an existing folder (``source="auto"`` or ``"local"``).
    """
    _check_source(source)
    root = data_root(data_dir)
    if source != "tfds" and root is not None and not root.is_dir():
        origin = "data_dir" if data_dir is not None else f"${ENV_VAR}"
        online = (f", or pass source='tfds' (--source tfds) to load {tfds_name!r} from tensorflow-datasets"
                  if tfds_name else "")
        raise DatasetNotFoundError(
            f"{dataset}: {origin}={root} is not an existing folder; give the folder holding {filename!r} "
            f"({LAYOUT}){online}"
        )
    path = root / filename if root is not None else None
    local_ok = path is not None and path.exists()
    if source == "local" or (source == "auto" and local_ok):
        if not local_ok:
            raise DatasetNotFoundError(_with_hint(_missing_message(dataset, filename, root), hint))
        return _resolved(dataset, "local", path, filename)
    if tfds_name is None:
        if source == "tfds":
            raise DatasetNotFoundError(_with_hint(
                f"{dataset} is not available from tensorflow-datasets; use source='local' (--source local) with "
                f"its {filename!r} in the folder given by {ROOT_OPTIONS} ({LAYOUT})", hint
            ))
        raise DatasetNotFoundError(_with_hint(
            _missing_message(dataset, filename, root) + "; tensorflow-datasets does not provide it", hint
        ))
    if source == "auto" and not _tfds_importable():
        raise DatasetNotFoundError(
            _missing_message(dataset, filename, root)
            + f"; the tensorflow-datasets fallback ({tfds_name!r}) is not installed"
        )
    if source == "auto" and root is not None:
        warnings.warn(
            f"{dataset}: {path} not found; loading {tfds_name!r} from tensorflow-datasets instead. Add the file "
            f"({LAYOUT}), or pass source='tfds' (--source tfds) to load it online without this warning.",
            stacklevel=3,
        )
    return _resolved(dataset, "tfds", tfds_name, tfds_name)


def load_npz(path, keys, *, dataset):
    """Reads ``keys`` from an ``.npz`` archive into memory, with clear errors for damaged or wrong files.

    Returns:
        dict mapping each key to its numpy array.
    """
    if not Path(path).exists():
        raise DatasetNotFoundError(f"{dataset}: no file {path}")
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        raise ValueError(f"{dataset}: damaged or unreadable archive {path}: not an .npz (zip) file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise ValueError(
                    f"{dataset}: archive {path} lacks the arrays {missing} (has {archive.files}); "
                    f"expected {LAYOUT}"
                )
            return {k: archive[k] for k in keys}
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise ValueError(f"{dataset}: damaged or unreadable archive {path}: {err}") from err


def tfds_arrays(tfds_name, split, keys, *, dataset, filename):
    """Loads a tfds split as numpy arrays, batch by batch (no ``batch_size=-1`` graph of the whole split).

    ``dataset`` and ``filename`` (the local file that can replace it, as given to :func:`resolve`) name the
    alternative when tfds fails.

    Returns:
        dict mapping each feature key to the concatenated numpy array.

    Raises:
        DatasetNotFoundError: when tensorflow-datasets cannot load it (offline, say).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise ImportError(
            f"source='tfds' needs tensorflow-datasets (pip install tensorflow-datasets) to load {tfds_name!r}"
        ) from err
    try:
        ds = tfds.load(tfds_name, split=split, shuffle_files=False)
    except Exception as err:  # tfds raises network, download and import errors of many kinds
        raise DatasetNotFoundError(
            f"{dataset}: tensorflow-datasets could not load {tfds_name!r} ({type(err).__name__}: {err}); give the "
            f"local file {filename!r} instead, in the folder given by {ROOT_OPTIONS} ({LAYOUT})"
        ) from err
    chunks = {k: [] for k in keys}
    for batch in tfds.as_numpy(ds.batch(1024)):
        for k in keys:
            chunks[k].append(batch[k])
    return {k: np.concatenate(v) for k, v in chunks.items()}


def check_split(split, allowed, dataset):
    if split not in allowed:
        raise ValueError(f"{dataset}: split must be one of {tuple(allowed)}, got {split!r}")
