"""BM25 keyword index, saved as plain files with a version stamp.

Chroma is the source of truth. This index is derived from it: rebuilt from Chroma's chunks
whenever it is missing, damaged, or holds other chunks than Chroma.

A saved version is a list of immutable segments plus, for each, the rows of its chunks
removed since. A segment keeps its chunks' rows, each (chunk, term) pair's count and each
chunk's length; idf, the chunk count and the mean length are computed when a question
comes, from the postings of the question's terms, so the scores are those a whole rebuild
gives (bm25s's, ``tests/test_bm25.py``). A writer that knows what it changed since the
last version (``extend``) appends one segment for its new chunks and notes the removed
ones: its cost follows the file it ingested, not the store (BENCHMARKS.md, "One file into
a large store"). Segments are merged when there are too many (``MAX_SEGMENTS``) or too
many of their chunks are removed (``MAX_REMOVED``). Each save writes a new version folder
and then atomically swaps a pointer file, so a crash mid-write leaves the previous version
serving.

Each segment also keeps its chunks' terms (``TERMS``), so that a merge, or a rebuild after
an ingest into a large store, tokenizes only the chunks it has not seen (BENCHMARKS.md,
"BM25 rebuild").
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from retrieval.types import Hit

log = logging.getLogger(__name__)

# 2: each doc also holds its document's effective date and supersedes;
# 3: and its context line (title > heading), indexed with its text;
# 4: and the pairs of adjacent words (``terms``);
# 5: segments of term counts, scored when a question comes
FORMAT_VERSION = 5
POINTER = "CURRENT"
MANIFEST = "manifest.json"  # a version's: its segments and the rows removed from each
SEGMENT = "s-"  # a segment folder's name starts so; a version folder's with "v"
DOCS = "docs.json"  # a segment's rows, written last: a segment without it is unfinished
COUNTS = "counts.npz"  # each (chunk, term) pair's count, by term (CSC)
KEYS = "keys.npy"  # each chunk id's ``_key``: a writer finds the rows it removes by them
TERMS = "terms.npz"  # each chunk's terms as ids, for merges and rebuilds (``_SavedTerms``)
# bump when ``tokenize`` or ``terms`` change what a text gives: saved terms are then not reused
TERMS_FORMAT = 1
# Lucene's BM25: idf = ln(1 + (N - df + 0.5) / (df + 0.5)) is never negative, unlike
# Robertson's, so a word in most chunks still counts a little (Kamphuis et al., ECIR 2020).
METHOD = "lucene"
K1, B = 1.5, 0.75
# How many times a chunk's context line (document title > section heading) is counted: a
# poor man's BM25F field weight (Robertson, Zaragoza and Taylor, CIKM 2004), which weights a
# field by repeating its terms. Chosen on the dev and policies sets (BENCHMARKS.md).
CONTEXT_WEIGHT = 2
# Word pairs are indexed by a hash into this many buckets, not by name: the pairs of a
# corpus outnumber its words tenfold and keep growing with it (SciFact's 5,183 abstracts:
# 26,560 words, 474,910 pairs), and the index keeps its whole vocabulary in memory and reads
# it at every load. With buckets a store's pairs cost at most this many vocabulary entries. A
# pair shares its bucket with another for one in seven of the policies' 38,684 pairs and
# most of SciFact's, yet the ranks hardly move from named pairs': policies within a
# question or two, SciFact's BM25 nDCG@10 0.662 against 0.660 (BENCHMARKS.md, stop 26).
PAIR_BUCKETS = 2**18
PAIR_WEIGHT = 1  # how many times each pair counts, in chunks and questions (0: words only)
# how many times ``load`` tries when the version it reads is replaced under it
LOAD_TRIES = 3
# A writer's version merges its segments after the first (the store as it was at the last
# merge, usually most of it) into one when there are more than this many: a search reads
# each segment's postings of its terms, a few small segments cost it nothing measurable.
MAX_SEGMENTS = 8
# and merges every segment into one when more than this share of their rows are removed
# (their postings still cost a search, and their rows memory)
MAX_REMOVED = 0.2
# an unreferenced segment is removed this long after it was finished: a writer finishes
# its segment just before the version that names it, and a save of another process
# meanwhile must not take it for debris
SEGMENT_GRACE_S = 600

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOP = frozenset(STOPWORDS_EN)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lower-case words of two or more characters, English stop words removed, Snowball-stemmed.

    The same function serves indexing and querying, and the rank-bm25 reference test.
    """
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOP]
    return _stemmer().stemWords(words)


def terms(text: str, pair_weight: int = PAIR_WEIGHT) -> list[str]:
    """What BM25 indexes and looks up: ``tokenize``'s words, then each pair of words next to
    each other once the stop words are out ("probation period": "probat", "period" and the
    pair's term, ``_pair``), so a chunk that has the question's words in its order
    outscores one that has them scattered.
    A simple form of the sequential dependence model (Metzler and Croft, SIGIR 2005); chosen
    on the dev and policies sets (BENCHMARKS.md, "Retrieval quality", stop 26). A question's
    pairs are asked for only where late interaction follows (``BM25Index.search``)."""
    words = tokenize(text)
    return words + [_pair(a, b) for a, b in itertools.pairwise(words)] * pair_weight


def _pair(first: str, second: str) -> str:
    """A word pair's term: its bucket (``PAIR_BUCKETS``) after a space, which no word has,
    so a pair never collides with a word. crc32, not ``hash``: the same in every process."""
    return f" {zlib.crc32(f'{first} {second}'.encode()) % PAIR_BUCKETS}"


def doc_tokens(
    text: str,
    context: str = "",
    context_weight: int = CONTEXT_WEIGHT,
    pair_weight: int = PAIR_WEIGHT,
) -> list[str]:
    """A chunk's indexed terms: its context line's ``context_weight`` times, then its text's."""
    return terms(context, pair_weight) * context_weight + terms(text, pair_weight)


def ids_checksum(ids: Iterable[str]) -> str:
    """Order-independent fingerprint of a set of chunk ids."""
    h = hashlib.sha256()
    for chunk_id in sorted(ids):
        h.update(chunk_id.encode())
        h.update(b"\n")
    return h.hexdigest()


class _Doc(NamedTuple):
    """A chunk as the index holds it: a ``ChunkRow`` with its optional fields filled in. A
    named tuple, not a frozen dataclass: 100,000 rows are made in about 0.3 s instead of 0.7
    (every load of a saved version makes them all; medians of 7 runs)."""

    id: str
    text: str
    source: str
    page: int | None
    effective: str | None = None
    supersedes: tuple[str, ...] = ()
    context: str = ""  # title > heading: indexed with the text, never returned as it

    @classmethod
    def from_row(cls, row: Sequence | _Doc) -> _Doc:
        """A stored or given row: (id, text, source, page[, effective, supersedes[, context]]),
        or a saved version's ``_Doc`` as it is."""
        if isinstance(row, _Doc):
            return row
        n = len(row)
        if not 4 <= n <= 7:
            raise TypeError(f"a chunk row has 4 to 7 fields, this one {n}")
        return cls(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4] if n > 4 else None,
            tuple(row[5]) if n > 5 else (),
            (row[6] or "") if n > 6 else "",
        )


def _fingerprint(doc: _Doc) -> int:
    """A chunk's text and context line in 8 bytes: its saved terms are reused only for the
    same (its id alone could come back with other text: a changed chunk size, a new
    heading rule)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(doc.text.encode())
    h.update(b"\x00")
    h.update(doc.context.encode())
    return int.from_bytes(h.digest(), "little")


def _lines(values: Sequence[str]) -> np.ndarray:
    """Strings without line breaks (chunk ids, terms) as one UTF-8 byte array: ``np.savez``
    then needs no pickle."""
    return np.frombuffer("\n".join(values).encode(), dtype=np.uint8)


def _unlines(array: np.ndarray, count: int) -> list[str]:
    values = array.tobytes().decode().split("\n") if count else []
    if len(values) != count:
        raise ValueError(f"{len(values)} strings where {count} were saved")
    return values


@dataclass(frozen=True)
class _SavedTerms:
    """A saved version's terms (``TERMS``): for each chunk id, the fingerprint of the text
    and context it was tokenized from and where its terms, as ids into ``vocab``, lie in
    ``flat`` (``terms_of``: views, not 100,000 arrays made at each read); ``key``: what
    else they depend on (``BM25Index._terms_key``)."""

    key: list[int]
    rows: dict[str, tuple[int, int, int]]  # id: (fingerprint, start, stop) in ``flat``
    flat: np.ndarray
    vocab: list[str]

    def terms_of(self, row: tuple[int, int, int]) -> np.ndarray:
        return self.flat[row[1] : row[2]]

    @classmethod
    def read(cls, path: Path) -> _SavedTerms:
        with np.load(path, allow_pickle=False) as saved:
            key = [int(k) for k in saved["key"]]
            lengths, flat = saved["lengths"], saved["flat"]
            prints = saved["fingerprints"].tolist()
            ids = _unlines(saved["ids"], len(lengths))
            vocab = _unlines(saved["vocab"], int(saved["vocab_size"]))
        if len(prints) != len(ids) or int(lengths.sum()) != len(flat):
            raise ValueError("its arrays disagree")
        if len(flat) and (int(flat.min()) < 0 or int(flat.max()) >= len(vocab)):
            raise ValueError("a term id outside its vocabulary")
        return cls(key, _rows_of(ids, prints, lengths), flat, vocab)

    @classmethod
    def of(cls, terms: _Terms) -> _SavedTerms:
        """What ``terms`` would be once written and read (a segment merged before it was)."""
        rows = _rows_of(terms.ids, terms.fingerprints, terms.lengths)
        return cls([], rows, terms.flat, terms.vocabulary)


def _rows_of(
    ids: Sequence[str], prints: Sequence[int], lengths: np.ndarray
) -> dict[str, tuple[int, int, int]]:
    stops = np.cumsum(lengths).tolist()
    starts = [0, *stops[:-1]] if stops else []
    return dict(zip(ids, zip(prints, starts, stops, strict=True), strict=True))


class _Terms:
    """The terms of the chunks one ``build`` indexes, as ids numbered 0..n-1 into the terms
    they use, with each chunk's fingerprint for the next build. A chunk whose id and
    fingerprint one of ``saved`` holds takes its terms from there (renumbered), the others
    are tokenized."""

    def __init__(
        self,
        docs: Sequence[_Doc],
        saved: Sequence[_SavedTerms],
        tokens: Callable[[_Doc], list[str]],
    ) -> None:
        lookup: dict[str, int] = {}
        # each saved vocabulary's ids in ``lookup``'s numbering, made at its first use;
        # None: the same numbering (the first one used, ``lookup`` empty until then)
        remaps: dict[int, np.ndarray | None] = {}
        rows: list[np.ndarray] = []
        self.ids = [d.id for d in docs]
        self.fingerprints = [_fingerprint(d) for d in docs]
        self.reused = 0
        for doc, fingerprint in zip(docs, self.fingerprints, strict=True):
            for n, one in enumerate(saved):
                kept = one.rows.get(doc.id)
                if kept is None or kept[0] != fingerprint:
                    continue
                if n not in remaps:
                    first = not lookup
                    ids = [lookup.setdefault(t, len(lookup)) for t in one.vocab]
                    remaps[n] = None if first else np.asarray(ids, dtype=np.int32)
                remap = remaps[n]
                found = one.terms_of(kept)
                rows.append(found if remap is None else remap[found])
                self.reused += 1
                break
            else:  # a new id gets the next number (arguments are evaluated before the insert)
                ids = (lookup.setdefault(t, len(lookup)) for t in tokens(doc))
                rows.append(np.fromiter(ids, dtype=np.int32))
        flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
        # keep only the terms some chunk still uses, numbered anew in their order
        used = np.bincount(flat, minlength=len(lookup)) > 0
        renumber = np.cumsum(used) - 1
        terms = list(lookup)
        self.vocabulary = [terms[n] for n in np.flatnonzero(used)]
        self.flat = renumber[flat].astype(np.int32)
        self.lengths = np.asarray([len(r) for r in rows], dtype=np.int64)

    def vocab(self) -> dict[str, int]:
        return {t: n for n, t in enumerate(self.vocabulary)}

    def counts(self) -> scipy.sparse.csc_matrix:
        """A (chunks x terms) CSC matrix of each (chunk, term) pair's count, canonical: each
        pair once, rows in order."""
        n, size = len(self.lengths), len(self.vocabulary)
        chunk = np.repeat(np.arange(n, dtype=np.int32), self.lengths)
        ones = np.ones(len(self.flat), dtype=np.float32)
        tf = scipy.sparse.csc_matrix((ones, (chunk, self.flat)), shape=(n, size))
        tf.sum_duplicates()
        return tf

    def length_norm(self, k1: float, b: float) -> np.ndarray:
        return length_norm(self.lengths, k1, b)

    def write(self, path: Path, key: list[int]) -> None:
        with open(path, "wb") as f:
            np.savez(
                f,
                key=np.asarray(key, dtype=np.int64),
                ids=_lines(self.ids),
                fingerprints=np.asarray(self.fingerprints, dtype=np.uint64),
                lengths=self.lengths,
                flat=self.flat,
                vocab=_lines(self.vocabulary),
                vocab_size=np.asarray(len(self.vocabulary)),
            )
            f.flush()
            os.fsync(f.fileno())


def length_norm(lengths: np.ndarray, k1: float, b: float) -> np.ndarray:
    """Each chunk's BM25 length normalisation, k1 * (1 - b + b * length / mean length)
    (Robertson and Zaragoza, "The Probabilistic Relevance Framework", 2009). The lengths
    are integers, so their mean is exact whatever their order."""
    return k1 * ((1 - b) + b * lengths.astype(np.float64) / lengths.mean())


def lucene_idf(n: int, df: int) -> np.float32:
    """Lucene's idf, ln(1 + (N - df + 0.5) / (df + 0.5)), as bm25s computes and keeps it."""
    return np.float32(np.log(1 + (n - df + 0.5) / (df + 0.5)))


def _live(rows: int, removed: np.ndarray) -> np.ndarray:
    """A segment's rows that are not ``removed``, as a mask."""
    live = np.ones(rows, dtype=bool)
    live[removed] = False
    return live


def _live_count(entries: Iterable[dict]) -> int:
    """How many chunks the segments a manifest names hold (rows less the removed ones)."""
    return sum(e["rows"] - len(e["removed"]) for e in entries)


def _key(chunk_id: str) -> int:
    """A chunk id in 8 bytes (``KEYS``): a writer finds the rows of the chunks it removed
    by these, without reading a large segment's rows."""
    return int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=8).digest(), "little")


def _keys(ids: Iterable[str]) -> np.ndarray:
    return np.fromiter((_key(i) for i in ids), dtype=np.uint64)


@dataclass(frozen=True, eq=False)
class _Segment:
    """An immutable part of a version: its chunks' rows, each (chunk, term) pair's count
    by term (a CSC matrix, rows in the segment's order), each chunk's length in terms and
    its id's ``_key``."""

    name: str
    docs: list[_Doc]
    vocab: dict[str, int]
    tf: scipy.sparse.csc_matrix
    lengths: np.ndarray
    keys: np.ndarray

    @classmethod
    def of(cls, docs: list[_Doc], terms: _Terms) -> _Segment:
        name = f"{SEGMENT}{uuid.uuid4().hex[:12]}"
        return cls(name, docs, terms.vocab(), terms.counts(), terms.lengths, _keys(terms.ids))

    def write(self, folder: Path, terms: _Terms, key: list[int]) -> None:
        """Write it into ``folder`` (new), its rows last: their file says it is whole."""
        folder.mkdir()
        terms.write(folder / TERMS, key)
        with open(folder / COUNTS, "wb") as f:
            np.savez(f, data=self.tf.data, indices=self.tf.indices, indptr=self.tf.indptr)
            f.flush()
            os.fsync(f.fileno())
        with open(folder / KEYS, "wb") as f:
            np.save(f, self.keys)
            f.flush()
            os.fsync(f.fileno())
        # each row a named tuple: json writes it as the array it is
        _write_atomic(folder / DOCS, json.dumps(self.docs, ensure_ascii=False))

    @classmethod
    def read(cls, folder: Path) -> _Segment:
        """Raises ``FileNotFoundError`` when a file is gone, ``ValueError`` when its parts
        disagree."""
        docs = [_Doc.from_row(d) for d in json.loads((folder / DOCS).read_text())]
        with np.load(folder / TERMS, allow_pickle=False) as saved:
            lengths = saved["lengths"]
            vocab = _unlines(saved["vocab"], int(saved["vocab_size"]))
        with np.load(folder / COUNTS, allow_pickle=False) as counts:
            data, indices, indptr = counts["data"], counts["indices"], counts["indptr"]
        keys = np.load(folder / KEYS, allow_pickle=False)
        n = len(docs)
        if not (len(lengths) == len(keys) == n and len(indptr) == len(vocab) + 1):
            raise ValueError(f"segment {folder.name}: its parts disagree")
        if len(indices) != indptr[-1] or (len(indices) and int(indices.max()) >= n):
            raise ValueError(f"segment {folder.name}: its counts are damaged")
        tf = scipy.sparse.csc_matrix((data, indices, indptr), shape=(n, len(vocab)))
        return cls(folder.name, docs, {t: i for i, t in enumerate(vocab)}, tf, lengths, keys)


class BM25Index:
    """A BM25 index over chunks, kept in ``directory``. ``context_weight``: how many times
    a chunk's context line counts (``doc_tokens``); ``k1``, ``b``: BM25's term-frequency
    saturation and length normalisation; ``pair_weight``: how many times a word pair counts
    (``terms``). The defaults are the product's; other values are for
    ``bench.retrieval_tuning``'s study."""

    def __init__(
        self,
        directory: Path,
        context_weight: int = CONTEXT_WEIGHT,
        *,
        k1: float = K1,
        b: float = B,
        pair_weight: int = PAIR_WEIGHT,
        _cache: dict[str, _Segment] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.context_weight = context_weight
        self.k1, self.b = k1, b
        self.pair_weight = pair_weight
        # the segments read, by name, shared with the indexes ``empty_like`` makes: a new
        # version reads only the segments the last one lacked
        self._cache: dict[str, _Segment] = {} if _cache is None else _cache
        self._segments: list[_Segment] = []
        self._removed: list[np.ndarray] = []  # each segment's rows removed, sorted
        self._unsaved: list[tuple[_Segment, _Terms]] = []  # built, not written yet
        self._docs: list[_Doc] = []  # the chunks that are not removed, in index order
        self._where: list[np.ndarray] = []  # each segment's rows' index (-1: removed)
        self._norm = np.zeros(0, dtype=np.float64)  # each chunk's ``length_norm``
        self._checksum: str | None = ids_checksum([])
        self._loaded_pointer: str | None = None
        self._pages: tuple[list[_Doc], dict[tuple[str, int | None], tuple[str, ...]]] | None = None

    def empty_like(self) -> BM25Index:
        """A new, empty index over the same directory that scores as this one does."""
        return BM25Index(
            self.directory,
            self.context_weight,
            k1=self.k1,
            b=self.b,
            pair_weight=self.pair_weight,
            _cache=self._cache,
        )

    def _scoring(self) -> dict[str, float]:
        """How the saved counts were made and are scored, recorded in the manifest."""
        return {
            "context_weight": self.context_weight,
            "k1": self.k1,
            "b": self.b,
            "pair_weight": self.pair_weight,
        }

    def _compose(self, segments: list[_Segment], removed: list[np.ndarray]) -> None:
        """Serve ``segments`` without their ``removed`` rows: the chunks in index order,
        where each segment's rows are in it, and each chunk's length normalisation."""
        docs: list[_Doc] = []
        where: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        for segment, gone in zip(segments, removed, strict=True):
            live = _live(len(segment.docs), gone)
            at = np.full(len(segment.docs), -1, dtype=np.int64)
            at[live] = np.arange(len(docs), len(docs) + int(live.sum()))
            docs.extend(itertools.compress(segment.docs, live) if len(gone) else segment.docs)
            where.append(at)
            lengths.append(segment.lengths[live])
        self._segments, self._removed, self._where = segments, removed, where
        self._docs = docs
        both = np.concatenate(lengths) if docs else np.zeros(0, dtype=np.int64)
        self._norm = length_norm(both, self.k1, self.b) if docs else np.zeros(0)
        self._checksum = None  # computed when asked (``matches``): 0.4 s at 100,000 chunks

    # ---- building and saving -------------------------------------------------------------
    def build(self, docs: Sequence[tuple], *, reuse: bool = False) -> None:
        """Index ``(id, text, source, page[, effective, supersedes[, context]])`` tuples,
        replacing what was indexed before, as one segment. The context line is indexed
        with the text (``doc_tokens``); hits carry the text alone. ``reuse``: take the terms
        of the chunks whose id, text and context the saved version also holds from there
        instead of tokenizing them again (``_SavedTerms``); the index is the same either way.

        The new index is built aside and swapped in at the end, which keeps the window in
        which a search in another thread could mix old and new to one statement."""
        new_docs = [_Doc.from_row(d) for d in docs]
        segments, unsaved = [], []
        if new_docs:
            saved = self._saved_terms() if reuse else []
            terms = _Terms(new_docs, saved, self._tokens)
            if saved:
                log.info("BM25: the terms of %d of %d chunks reused", terms.reused, len(new_docs))
            segment = _Segment.of(new_docs, terms)
            segments, unsaved = [segment], [(segment, terms)]
        self._compose(segments, [np.zeros(0, dtype=np.int64) for _ in segments])
        self._unsaved = unsaved

    def _tokens(self, doc: _Doc) -> list[str]:
        return doc_tokens(doc.text, doc.context, self.context_weight, self.pair_weight) or [
            "\x00empty"
        ]

    def _terms_key(self) -> list[int]:
        """What a chunk's terms depend on besides its text and context."""
        return [TERMS_FORMAT, self.context_weight, self.pair_weight, PAIR_BUCKETS]

    def _saved_terms(self, segments: Iterable[str] | None = None) -> list[_SavedTerms]:
        """The saved terms of ``segments`` (of the current saved version when None) that
        were made as this index makes them; those made otherwise, or that cannot be read,
        are left out (their chunks are tokenized, as in a first build)."""
        if segments is None:
            name = self.pointer()
            try:
                entries = self._read_manifest(name)[0] if name else None
            except (OSError, ValueError, KeyError, TypeError):
                entries = None
            segments = [e["name"] for e in entries or []]
        found = []
        for segment in segments:
            try:
                saved = _SavedTerms.read(self.directory / segment / TERMS)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                log.info("BM25 terms of %s not reused (%s); its chunks are tokenized", segment, exc)
                continue
            if saved.key == self._terms_key():
                found.append(saved)
        return found

    def save(self) -> None:
        """Write the segments built since the last save and a new version folder naming
        every segment, then swap the pointer to it (atomic on POSIX).

        If writing fails (a full disk), what was written is removed and the pointer still
        names the previous version, which keeps serving."""
        entries = [
            {"name": s.name, "rows": len(s.docs), "removed": r.tolist()}
            for s, r in zip(self._segments, self._removed, strict=True)
        ]
        name = self._write_version(entries, self._unsaved)
        self._unsaved = []
        self._loaded_pointer = name
        self._keep_cached(self._segments)

    def _write_version(
        self, entries: list[dict], unsaved: Sequence[tuple[_Segment, _Terms]]
    ) -> str:
        """Write the ``unsaved`` segments, then a version of the segments ``entries`` name
        (name, rows, removed rows), then point to it; returns its name."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"v{FORMAT_VERSION}-{uuid.uuid4().hex[:12]}"
        target = self.directory / name
        written: list[Path] = []
        try:
            for segment, terms in unsaved:
                written.append(self.directory / segment.name)
                segment.write(written[-1], terms, self._terms_key())
            target.mkdir()
            manifest = {
                "format_version": FORMAT_VERSION,
                "method": METHOD,
                **self._scoring(),
                "count": _live_count(entries),
                "segments": entries,
            }
            _write_atomic(target / MANIFEST, json.dumps(manifest))
            _write_atomic(self.directory / POINTER, name)
        except BaseException:
            for folder in [*written, target]:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        self._remove_old_versions(keep=name, segments={e["name"] for e in entries})
        return name

    def extend(
        self, base: str, rows: Sequence[tuple], removed: Iterable[str], *, expect: int | None
    ) -> str | None:
        """Save a new version: saved version ``base`` without the chunks ``removed`` (ids;
        those it does not hold are ignored) and with ``rows`` as one more segment. Only the
        segments' keys are read, not their rows: the cost follows ``rows``, not the store.
        More than ``MAX_SEGMENTS`` segments: those after the first are merged into one;
        more than ``MAX_REMOVED`` of their rows removed: all of them are. Returns the new
        version's name (not loaded: ``load`` it, which reads only the segments this index
        has not read), or None, with nothing saved, when ``base`` cannot be read or was
        made otherwise, or would then not hold ``expect`` chunks (the caller rebuilds)."""
        try:
            entries, _ = self._read_manifest(base)
            gone = np.unique(_keys(removed))
            new_entries = []
            for entry in entries:
                keys = self._keys_of(entry["name"])
                if len(keys) != entry["rows"]:
                    raise ValueError(f"segment {entry['name']}: its keys disagree")
                hit = np.flatnonzero(np.isin(keys, gone, assume_unique=False))
                both = np.union1d(np.asarray(entry["removed"], dtype=np.int64), hit)
                new_entries.append({**entry, "removed": both.astype(np.int64).tolist()})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("BM25 version %s not extended (%s); it will be rebuilt", base, exc)
            return None
        docs = [_Doc.from_row(r) for r in rows]
        count = _live_count(new_entries) + len(docs)
        if expect is not None and count != expect:
            log.info("BM25 version %s extended would hold %d chunks, not %d", base, count, expect)
            return None
        unsaved = []
        if docs:
            terms = _Terms(docs, [], self._tokens)
            segment = _Segment.of(docs, terms)
            unsaved.append((segment, terms))
            new_entries.append({"name": segment.name, "rows": len(docs), "removed": []})
            self._cache[segment.name] = segment
        total = sum(e["rows"] for e in new_entries)
        dropped = sum(len(e["removed"]) for e in new_entries)
        if dropped > MAX_REMOVED * total:
            new_entries, unsaved = self._merged(new_entries, unsaved, 0)
        elif len(new_entries) > MAX_SEGMENTS:
            new_entries, unsaved = self._merged(new_entries, unsaved, 1)
        return self._write_version(new_entries, unsaved)

    def _merged(
        self, entries: list[dict], unsaved: list[tuple[_Segment, _Terms]], first: int
    ) -> tuple[list[dict], list[tuple[_Segment, _Terms]]]:
        """``entries`` with those from ``first`` on merged into one segment of their rows
        that are not removed (their terms reused, not tokenized again)."""
        merging = entries[first:]
        pending = {s.name: s for s, _ in unsaved}
        docs: list[_Doc] = []
        for entry in merging:
            segment = pending.get(entry["name"]) or self._segment(entry["name"])
            live = _live(len(segment.docs), np.asarray(entry["removed"], dtype=np.int64))
            docs.extend(itertools.compress(segment.docs, live))
        saved = self._saved_terms(e["name"] for e in merging if e["name"] not in pending)
        saved += [_SavedTerms.of(t) for _, t in unsaved]
        terms = _Terms(docs, saved, self._tokens)
        log.info("BM25: %d segments merged into one of %d chunks", len(merging), len(docs))
        kept = entries[:first]
        if not docs:
            return kept, []
        segment = _Segment.of(docs, terms)
        self._cache[segment.name] = segment
        return [*kept, {"name": segment.name, "rows": len(docs), "removed": []}], [(segment, terms)]

    def _keys_of(self, segment: str) -> np.ndarray:
        cached = self._cache.get(segment)
        if cached is not None:
            return cached.keys
        return np.load(self.directory / segment / KEYS, allow_pickle=False)

    def _segment(self, name: str) -> _Segment:
        """Segment ``name``, read once per process (segments never change)."""
        segment = self._cache.get(name)
        if segment is None:
            segment = _Segment.read(self.directory / name)
            self._cache[name] = segment
        return segment

    def _keep_cached(self, segments: Sequence[_Segment]) -> None:
        """Forget the segments the version now served no longer names."""
        names = {s.name for s in segments}
        for name in [n for n in self._cache if n not in names]:
            self._cache.pop(name, None)
        for segment in segments:
            self._cache.setdefault(segment.name, segment)

    def _remove_old_versions(self, keep: str, segments: set[str]) -> None:
        """Delete superseded versions and the segments ``keep`` does not name (a reader that
        still has one open keeps its in-memory copy). A folder without its last file may be
        another process's save in progress: it is left alone unless it is an hour old (a
        crashed save); a finished segment no version names yet, for ``SEGMENT_GRACE_S``."""
        now = time.time()
        for old in self.directory.iterdir():
            if not old.is_dir() or old.name == keep or old.name in segments:
                continue
            segment = old.name.startswith(SEGMENT)
            try:
                finished = (old / (DOCS if segment else MANIFEST)).exists()
                age = now - old.stat().st_mtime
            except OSError:
                continue
            if (finished and (not segment or age > SEGMENT_GRACE_S)) or age > 3600:
                shutil.rmtree(old, ignore_errors=True)
        for tmp in self.directory.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > 3600:
                    tmp.unlink()
            except OSError:
                pass

    # ---- loading -------------------------------------------------------------------------
    def pointer(self) -> str | None:
        try:
            return (self.directory / POINTER).read_text().strip() or None
        except OSError:
            return None

    def _read_manifest(self, name: str) -> tuple[list[dict], int]:
        """Version ``name``'s segments (name, rows, removed rows) and chunk count. Raises
        ``ValueError`` when it has another format or was scored otherwise (then it is
        rebuilt), ``OSError`` and the like when it cannot be read."""
        folder = self.directory / name
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            log.info(
                "BM25 index at %s has format %s, this version reads %s (segments scored "
                "when a question comes); it will be rebuilt from Chroma",
                folder,
                manifest.get("format_version"),
                FORMAT_VERSION,
            )
            raise _Refused("another format")
        scoring = self._scoring()
        saved = {key: manifest.get(key) for key in scoring}
        if saved != scoring:
            # an index saved with other parameters would rank by them, not by these
            log.info(
                "BM25 index at %s was saved with %s, %s are asked for; it will be "
                "rebuilt from Chroma",
                folder,
                saved,
                scoring,
            )
            raise _Refused("other scoring")
        entries = manifest["segments"]
        for entry in entries:
            if not (
                isinstance(entry["name"], str)
                and entry["name"].startswith(SEGMENT)
                and "/" not in entry["name"]
            ):
                raise ValueError(f"a segment named {entry['name']!r}")
        if _live_count(entries) != manifest["count"]:
            raise ValueError("its segments disagree with its count")
        return entries, manifest["count"]

    def saved_docs(self, name: str) -> dict[str, _Doc] | None:
        """The chunks of saved version ``name`` by id, as rows: where a writer's sync takes
        the rows of the chunks it did not change (``LiveBM25.sync``). None when that
        version is gone or unreadable; taken from memory when loaded."""
        if name == self._loaded_pointer:
            return {d.id: d for d in self._docs}
        other = self.empty_like()
        try:
            if not other._load(name):
                return None
        except OSError:
            return None
        return {d.id: d for d in other._docs}

    def load(self) -> bool:
        """Load the current version. False when missing or damaged (the caller rebuilds).
        A version that another process replaced and removed while this one read it (a
        writer's save) is not damaged: the one the pointer names now is loaded instead of
        rebuilding from Chroma."""
        name = self.pointer()
        for tries in range(1, LOAD_TRIES + 1):
            try:
                loaded = self._load(name)
            except FileNotFoundError as exc:
                newer = self.pointer()
                if newer == name or tries == LOAD_TRIES:  # not replaced: gone
                    log.warning(
                        "BM25 index at %s is damaged (%s); it will be rebuilt",
                        self.directory / name,
                        exc,
                    )
                    return False
                log.info("BM25 version %s was replaced while it loaded; loading %s", name, newer)
                name = newer
                continue
            if loaded:
                self._keep_cached(self._segments)
            return loaded
        return False

    def _load(self, name: str | None) -> bool:
        """Load version ``name``, reading only the segments not read before. Raises
        ``FileNotFoundError`` when a file of it is gone; False when it is otherwise damaged
        or made otherwise."""
        if name is None:
            return False
        folder = self.directory / name
        try:
            entries, count = self._read_manifest(name)
            segments = [self._segment(e["name"]) for e in entries]
            removed = []
            for entry, segment in zip(entries, segments, strict=True):
                gone = np.asarray(entry["removed"], dtype=np.int64)
                if entry["rows"] != len(segment.docs) or (
                    len(gone) and not (0 <= gone.min() and gone.max() < entry["rows"])
                ):
                    raise ValueError(f"segment {segment.name} disagrees with the version")
                removed.append(gone)
        except _Refused:
            return False
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("BM25 index at %s is damaged (%s); it will be rebuilt", folder, exc)
            return False
        self._compose(segments, removed)
        if len(self._docs) != count:
            log.warning("BM25 index at %s is damaged (its count); it will be rebuilt", folder)
            return False
        self._unsaved = []
        self._loaded_pointer = name
        return True

    def matches(self, ids: Sequence[str]) -> bool:
        """Whether this index holds exactly the chunks ``ids`` (count and checksum)."""
        return len(self._docs) == len(ids) and self.checksum == ids_checksum(ids)

    @property
    def version(self) -> str | None:
        """The name of the saved version this one is (saved or loaded), None when neither."""
        return self._loaded_pointer

    def is_stale(self) -> bool:
        """True when another process saved a newer version since we loaded ours."""
        return self.pointer() != self._loaded_pointer

    @property
    def checksum(self) -> str:
        if self._checksum is None:
            self._checksum = ids_checksum(d.id for d in self._docs)
        return self._checksum

    @property
    def segments(self) -> int:
        """How many segments this version has."""
        return len(self._segments)

    def __len__(self) -> int:
        return len(self._docs)

    def page_members(self, source: str, page: int | None) -> tuple[str, ...]:
        """The ids of the indexed chunks of page ``page`` of ``source`` (of the whole file,
        when it has no pages), in index order; made once per version of the index."""
        docs, pages = self._docs, self._pages
        if pages is None or pages[0] is not docs:
            found: dict[tuple[str, int | None], list[str]] = {}
            for d in docs:
                found.setdefault((d.source, d.page), []).append(d.id)
            pages = (docs, {key: tuple(ids) for key, ids in found.items()})
            self._pages = pages
        return pages[1].get((source, page), ())

    # ---- searching -----------------------------------------------------------------------
    def scores(self, query: str, *, pairs: bool = True) -> np.ndarray:
        """BM25 score of every indexed chunk for ``query`` (in index order). ``pairs=False``
        looks up the question's words only: the chunks still hold their pairs, but none of
        the question's is asked for (see ``search``).

        Lucene's BM25 (``METHOD``) from the counts of the question's terms in every segment,
        the removed rows left out: each term's idf from the chunks that hold it, the length
        normalisation from every chunk's length. The same float operations, in the same
        order, as bm25s's index and ``get_scores`` (a term the question repeats counts
        again), so the scores are those it would keep precomputed (tests/test_bm25.py)."""
        segments, where, norm = self._segments, self._where, self._norm
        out = np.zeros(len(norm), dtype=np.float32)
        for term in terms(query, self.pair_weight if pairs else 0):
            rows, counts = [], []
            for segment, at in zip(segments, where, strict=True):
                column = segment.vocab.get(term)
                if column is None:
                    continue
                start, stop = segment.tf.indptr[column], segment.tf.indptr[column + 1]
                found = at[segment.tf.indices[start:stop]]
                count = segment.tf.data[start:stop]
                live = found >= 0
                if not live.all():
                    found, count = found[live], count[live]
                rows.append(found)
                counts.append(count)
            df = sum(len(r) for r in rows)
            if df == 0:
                continue
            found = rows[0] if len(rows) == 1 else np.concatenate(rows)
            count = counts[0] if len(counts) == 1 else np.concatenate(counts)
            idf = lucene_idf(len(norm), df)
            out[found] += (idf * (count / (norm[found] + count))).astype(np.float32)
        return out

    def search(self, query: str, k: int, *, pairs: bool = True) -> list[Hit]:
        """The ``k`` best chunks for ``query``. ``pairs``: whether the question's word pairs
        count. The pairs put the answering chunk first more often when late interaction
        re-scores the top after them, and less often without it (BM25 alone, fusion alone:
        BENCHMARKS.md, "Retrieval quality", stop 26), so ``HybridRetriever`` asks for them
        only then."""
        scores = self.scores(query, pairs=pairs)
        if scores.size == 0 or k <= 0:
            return []
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]  # by score, then index order: deterministic
        hits = []
        for i in top:
            if scores[i] <= 0:
                break
            d = self._docs[int(i)]
            hits.append(
                Hit(
                    id=d.id,
                    text=d.text,
                    source=d.source,
                    page=d.page,
                    score=float(scores[i]),
                    effective=d.effective,
                    supersedes=d.supersedes,
                    context=d.context,
                )
            )
        return hits


class _Refused(ValueError):
    """A saved version made otherwise (format, scoring): not damaged, but rebuilt."""


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
