"""DBpedia-14 ontology classification (Zhang, Zhao & LeCun 2015) as token ids for the text DHRNet.

Local sources, in the data root:
- ``dbpedia_csv/train.csv`` and ``dbpedia_csv/test.csv`` as released by Zhang et al. (rows ``class,title,abstract``
  with 1-based classes; 560,000 / 70,000 rows), preferred when present;
- otherwise ``dbpedia_subset.npz`` (``shared/data``): 5,000 + 5,000 abstracts, ``text_a`` used as train and
  ``text_b`` as test. Results on it are on a subset and must say so.
Only the abstract is used (the subset has no titles). tensorflow-datasets has no DBpedia.

Tokens are lower-cased word runs (``\\w+`` with inner apostrophes). The :class:`Vocabulary` is built on the
training split only; id 0 is padding, id 1 is out-of-vocabulary, words follow by decreasing training frequency.
"""

import collections
import csv
import json
import re

import numpy as np

from keras_crosr.datasets import _source

CLASS_NAMES = (
    "Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder", "MeanOfTransportation", "Building",
    "NaturalPlace", "Village", "Animal", "Plant", "Album", "Film", "WrittenWork",
)
NUM_CLASSES = len(CLASS_NAMES)
PAD_ID = 0
OOV_ID = 1
CSV_DIR = "dbpedia_csv"
SUBSET_FILE = "dbpedia_subset.npz"
RELEASES = ("auto", "csv", "subset")
_TOKEN = re.compile(r"\w+(?:'\w+)*")


def tokenize(text):
    """Lower-cased word tokens of one string."""
    return _TOKEN.findall(text.lower())


class Vocabulary:
    """Word -> id map: 0 = padding, 1 = out-of-vocabulary, then words by decreasing frequency (ties by word).

    Args:
        tokens: the words, most frequent first (ids 2, 3, ...).
    """

    def __init__(self, tokens):
        tokens = list(tokens)
        if len(set(tokens)) != len(tokens):
            raise ValueError("Vocabulary: tokens must be unique")
        self.tokens = tokens
        self._ids = {t: i + 2 for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, texts, *, max_tokens=20000, min_count=1):
        """Builds the vocabulary from training texts, keeping at most ``max_tokens`` ids (padding and OOV included)."""
        if max_tokens < 3:
            raise ValueError(f"Vocabulary: max_tokens must be at least 3 (padding, OOV, one word), got {max_tokens}")
        counts = collections.Counter(t for text in texts for t in tokenize(text))
        ranked = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda kv: (-kv[1], kv[0]))
        return cls([t for t, _ in ranked[: max_tokens - 2]])

    def __len__(self):
        return len(self.tokens) + 2

    @property
    def size(self):
        """Number of ids, padding and OOV included (the ``vocab_size`` of the text model)."""
        return len(self)

    def encode(self, texts, max_length):
        """Token ids, truncated / right-padded to ``max_length``: int32 ``(len(texts), max_length)``."""
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        out = np.full((len(texts), max_length), PAD_ID, dtype=np.int32)
        for row, text in enumerate(texts):
            ids = [self._ids.get(t, OOV_ID) for t in tokenize(text)[:max_length]]
            out[row, : len(ids)] = ids
        return out

    def decode(self, ids):
        """Words of one id sequence, padding dropped, OOV shown as ``[UNK]``."""
        return [("[UNK]" if i == OOV_ID else self.tokens[i - 2]) for i in np.asarray(ids).tolist() if i != PAD_ID]

    def get_config(self):
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_config(cls, config):
        return cls(config["tokens"])

    def to_json(self):
        return json.dumps(self.get_config(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text):
        return cls.from_config(json.loads(text))

    def save(self, path):
        """Writes the vocabulary as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path):
        """Reads a vocabulary written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())


def _read_csv(path):
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if len(row) != 3 or not row[0].strip().isdigit():
                raise ValueError(f"DBpedia: {path} line {line_no}: expected 'class,title,abstract', got {row[:3]!r}")
            label = int(row[0])
            if not 1 <= label <= NUM_CLASSES:
                raise ValueError(f"DBpedia: {path} line {line_no}: class {label} outside 1..{NUM_CLASSES}")
            texts.append(row[2])
            labels.append(label - 1)
    return texts, np.asarray(labels, dtype=np.int64)


def load_dbpedia_text(*, release="auto", data_dir=None):
    """Raw DBpedia abstracts and 0-based labels.

    Args:
        release: ``"csv"`` (``dbpedia_csv/``), ``"subset"`` (``dbpedia_subset.npz``) or ``"auto"`` (the CSV
            release when present, else the subset).
        data_dir: local data root; defaults to ``$KERAS_CROSR_DATA``.

    Returns:
        ``(texts_train, y_train), (texts_test, y_test)``: lists of str and int64 arrays in 0..13.
    """
    if release not in RELEASES:
        raise ValueError(f"DBpedia: release must be one of {RELEASES}, got {release!r}")
    root = _source.data_root(data_dir)
    if release == "csv" or (release == "auto" and root is not None and (root / CSV_DIR / "train.csv").is_file()):
        folder = _source.resolve("DBpedia", CSV_DIR, source="local", data_dir=data_dir)[1]
        for name in ("train.csv", "test.csv"):
            if not (folder / name).is_file():
                raise _source.DatasetNotFoundError(f"DBpedia: missing {folder / name} (Zhang et al. dbpedia_csv)")
        return _read_csv(folder / "train.csv"), _read_csv(folder / "test.csv")
    path = _source.resolve("DBpedia", SUBSET_FILE, source="local", data_dir=data_dir)[1]
    arrays = _source.load_npz(path, ["text_a", "y_a", "text_b", "y_b"], dataset="DBpedia")
    return (
        (arrays["text_a"].tolist(), arrays["y_a"].astype(np.int64)),
        (arrays["text_b"].tolist(), arrays["y_b"].astype(np.int64)),
    )


def load_dbpedia(*, max_length=128, max_tokens=20000, min_count=1, release="auto", data_dir=None):
    """DBpedia as token ids, the vocabulary built on the training split only.

    Args:
        max_length: token ids per text (longer texts are truncated, shorter ones padded with 0).
        max_tokens: vocabulary size including padding (0) and OOV (1).
        min_count: words seen fewer times in training are OOV.
        release, data_dir: see :func:`load_dbpedia_text`.

    Returns:
        ``(x_train, y_train), (x_test, y_test), vocabulary``: int32 ``(n, max_length)`` ids, int64 labels in
        0..13 (order of ``CLASS_NAMES``) and the :class:`Vocabulary`.
    """
    (t_train, y_train), (t_test, y_test) = load_dbpedia_text(release=release, data_dir=data_dir)
    vocabulary = Vocabulary.build(t_train, max_tokens=max_tokens, min_count=min_count)
    return (
        (vocabulary.encode(t_train, max_length), y_train),
        (vocabulary.encode(t_test, max_length), y_test),
        vocabulary,
    )
