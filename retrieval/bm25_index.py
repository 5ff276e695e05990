"""BM25 keyword index (bm25s), saved as plain files with a version stamp and a checksum.

Chroma is the source of truth. This index is derived from it: rebuilt from Chroma's chunks
whenever it is missing, damaged, or its checksum disagrees with Chroma's ids. Each save
writes a new folder and then atomically swaps a pointer file, so a crash mid-write leaves
the previous index serving.

Each version also keeps its chunks' terms (``TERMS``), so that the next rebuild, after an
ingest that added one file to a large store, tokenizes only the chunks it has not seen: the
same index as a whole rebuild, about nine times as fast at 30,000 chunks and more
(BENCHMARKS.md, "BM25 rebuild").
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

import bm25s
import numpy as np
import scipy.sparse
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from retrieval.types import Hit

log = logging.getLogger(__name__)

# 2: each doc also holds its document's effective date and supersedes;
# 3: and its context line (title > heading), indexed with its text;
# 4: and the pairs of adjacent words (``terms``)
FORMAT_VERSION = 4
# what a format-4 manifest saved before it named k1, b and pair_weight (stop 26) was scored with
_FORMAT_4_SCORING = {"k1": 1.5, "b": 0.75, "pair_weight": 1}
POINTER = "CURRENT"
MANIFEST = "manifest.json"
TERMS = "terms.npz"  # each chunk's terms as ids, for the next rebuild (``_SavedTerms``)
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
# 26,560 words, 474,910 pairs), and bm25s keeps its whole vocabulary in memory and reads it
# at every load. With buckets a store's pairs cost at most this many vocabulary entries. A
# pair shares its bucket with another for one in seven of the policies' 38,684 pairs and
# most of SciFact's, yet the ranks hardly move from named pairs': policies within a
# question or two, SciFact's BM25 nDCG@10 0.662 against 0.660 (BENCHMARKS.md, stop 26).
PAIR_BUCKETS = 2**18
PAIR_WEIGHT = 1  # how many times each pair counts, in chunks and questions (0: words only)
# how many times ``load`` tries when the version it reads is replaced under it
LOAD_TRIES = 3

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
        stops = np.cumsum(lengths).tolist()
        starts = [0, *stops[:-1]] if stops else []
        rows = dict(zip(ids, zip(prints, starts, stops, strict=True), strict=True))
        return cls(key, rows, flat, vocab)


class _Terms:
    """The terms of the chunks one ``build`` indexes, as ids numbered 0..n-1 into the terms
    they use (what bm25s takes), with each chunk's fingerprint for the next build."""

    def __init__(
        self, docs: Sequence[_Doc], saved: _SavedTerms | None, tokens: Callable[[_Doc], list[str]]
    ) -> None:
        lookup: dict[str, int] = {t: n for n, t in enumerate(saved.vocab)} if saved else {}
        rows: list[np.ndarray] = []
        self.ids = [d.id for d in docs]
        self.fingerprints = [_fingerprint(d) for d in docs]
        self.reused = 0
        for doc, fingerprint in zip(docs, self.fingerprints, strict=True):
            kept = saved.rows.get(doc.id) if saved else None
            if kept is not None and kept[0] == fingerprint:
                rows.append(saved.terms_of(kept))  # type: ignore[union-attr]  # kept: saved
                self.reused += 1
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
        """Each chunk's BM25 length normalisation, k1 * (1 - b + b * length / mean length)."""
        return k1 * ((1 - b) + b * self.lengths.astype(np.float64) / self.lengths.mean())

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


def _bm25s_model(terms: _Terms, k1: float, b: float) -> bm25s.BM25:
    """The bm25s model of ``terms``, the scores bit for bit those ``bm25s.BM25.index``
    computes (tests/test_bm25.py compares them), as array operations: bm25s counts each
    chunk's terms in a Python loop, about 3.5 s for 30,000 chunks where this takes 0.2 s
    (BENCHMARKS.md, "BM25 rebuild"). Lucene's idf and term-frequency part (``METHOD``),
    stored as bm25s stores them: a (chunks x terms) CSC matrix of each pair's score."""
    assert METHOD == "lucene", "written for Lucene's BM25 only"
    model = bm25s.BM25(method=METHOD, k1=k1, b=b)
    n, size = len(terms.lengths), len(terms.vocabulary)
    tf = terms.counts()
    df = np.diff(tf.indptr)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
    norm = terms.length_norm(k1, b)
    term = np.repeat(np.arange(size), df)
    data = idf[term] * (tf.data / (norm[tf.indices] + tf.data))
    model.scores = {
        "data": data.astype(np.float32),
        "indices": tf.indices.astype(np.int32),
        "indptr": tf.indptr.astype(np.int64),
        "num_docs": n,
    }
    model.vocab_dict = terms.vocab()
    model.vocab_dict.setdefault("", size)  # bm25s's "empty token", as its index() adds it
    model.unique_token_ids_set = set(model.vocab_dict.values())
    model.nonoccurrence_array = None
    return model


class BM25Index:
    """A bm25s index over chunks, kept in ``directory``. ``context_weight``: how many times
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
    ) -> None:
        self.directory = Path(directory)
        self.context_weight = context_weight
        self.k1, self.b = k1, b
        self.pair_weight = pair_weight
        self._docs: list[_Doc] = []
        self._bm25: bm25s.BM25 | None = None
        self._checksum = ids_checksum([])
        self._loaded_pointer: str | None = None
        self._terms: _Terms | None = None  # what ``build`` tokenized, for ``save``
        self._pages: tuple[list[_Doc], dict[tuple[str, int | None], tuple[str, ...]]] | None = None

    def empty_like(self) -> BM25Index:
        """A new, empty index over the same directory that scores as this one does."""
        return BM25Index(
            self.directory,
            self.context_weight,
            k1=self.k1,
            b=self.b,
            pair_weight=self.pair_weight,
        )

    def _scoring(self) -> dict[str, float]:
        """What bm25s bakes into the saved scores, recorded in the manifest."""
        return {
            "context_weight": self.context_weight,
            "k1": self.k1,
            "b": self.b,
            "pair_weight": self.pair_weight,
        }

    # ---- building and saving -------------------------------------------------------------
    def build(self, docs: Sequence[tuple], *, reuse: bool = False) -> None:
        """Index ``(id, text, source, page[, effective, supersedes[, context]])`` tuples,
        replacing what was indexed before. The context line is indexed with the text
        (``doc_tokens``); hits carry the text alone. ``reuse``: take the terms of the chunks
        whose id, text and context the saved version also holds from there instead of
        tokenizing them again (``_SavedTerms``); the index is the same either way.

        The new index is built aside and swapped in at the end, which keeps the window in
        which a search in another thread could mix old and new to one statement."""
        new_docs = [_Doc.from_row(d) for d in docs]
        model, terms = None, None
        if new_docs:
            saved = self._saved_terms() if reuse else None
            terms = _Terms(new_docs, saved, self._tokens)
            if saved is not None:
                log.info("BM25: the terms of %d of %d chunks reused", terms.reused, len(new_docs))
            model = _bm25s_model(terms, self.k1, self.b)
        self._docs, self._bm25, self._checksum, self._terms = (
            new_docs,
            model,
            ids_checksum(d.id for d in new_docs),
            terms,
        )

    def _tokens(self, doc: _Doc) -> list[str]:
        return doc_tokens(doc.text, doc.context, self.context_weight, self.pair_weight) or [
            "\x00empty"
        ]

    def _terms_key(self) -> list[int]:
        """What a chunk's terms depend on besides its text and context."""
        return [TERMS_FORMAT, self.context_weight, self.pair_weight, PAIR_BUCKETS]

    def _saved_terms(self) -> _SavedTerms | None:
        """The current saved version's terms, when they were made as this index makes them;
        None when there are none (a version saved before them), they were made otherwise,
        or they cannot be read (then every chunk is tokenized, as in a first build)."""
        name = self.pointer()
        if name is None:
            return None
        try:
            saved = _SavedTerms.read(self.directory / name / TERMS)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.info("BM25 terms of %s not reused (%s); every chunk is tokenized", name, exc)
            return None
        return saved if saved.key == self._terms_key() else None

    def save(self) -> None:
        """Write a new version folder, then swap the pointer to it (atomic on POSIX).

        If writing fails (a full disk), the new folder is removed and the pointer still
        names the previous version, which keeps serving."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"v{FORMAT_VERSION}-{uuid.uuid4().hex[:12]}"
        target = self.directory / name
        target.mkdir()
        try:
            if self._bm25 is not None:
                self._bm25.save(str(target / "bm25s"), allow_pickle=False)
            if self._terms is not None:
                self._terms.write(target / TERMS, self._terms_key())
            manifest = {
                "format_version": FORMAT_VERSION,
                "method": METHOD,
                **self._scoring(),
                "count": len(self._docs),
                "checksum": self._checksum,
                "docs": self._docs,  # each a named tuple: json writes it as the array it is
            }
            _write_atomic(target / MANIFEST, json.dumps(manifest, ensure_ascii=False))
            _write_atomic(self.directory / POINTER, name)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        self._loaded_pointer = name
        self._remove_old_versions(keep=name)

    def _remove_old_versions(self, keep: str) -> None:
        """Delete superseded versions (a reader that still has one open keeps its in-memory
        copy). A folder without a manifest may be another process's save in progress: it is
        left alone unless it is an hour old (a crashed save)."""
        now = time.time()
        for old in self.directory.iterdir():
            if not old.is_dir() or old.name == keep:
                continue
            try:
                finished = (old / MANIFEST).exists()
                abandoned = now - old.stat().st_mtime > 3600
            except OSError:
                continue
            if finished or abandoned:
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

    def _manifest(self, name: str) -> tuple[dict, list[_Doc]] | None:
        """Version ``name``'s manifest and its chunks, None when it has another format or
        its chunks disagree with its count or checksum. Raises when it cannot be read."""
        folder = self.directory / name
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            log.info(
                "BM25 index at %s has format %s, this version reads %s (dates, context "
                "lines and word pairs); it will be rebuilt from Chroma",
                folder,
                manifest.get("format_version"),
                FORMAT_VERSION,
            )
            return None
        docs = [_Doc.from_row(d) for d in manifest["docs"]]
        if len(docs) != manifest["count"]:
            return None
        if ids_checksum(d.id for d in docs) != manifest["checksum"]:
            return None
        return manifest, docs

    def saved_docs(self, name: str) -> dict[str, _Doc] | None:
        """The chunks of saved version ``name`` by id, as rows (without its model): where a
        writer's sync takes the rows of the chunks it did not change (``LiveBM25.sync``).
        None when that version is gone or unreadable; taken from memory when loaded."""
        if name == self._loaded_pointer:
            return {d.id: d for d in self._docs}
        try:
            got = self._manifest(name)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return None if got is None else {d.id: d for d in got[1]}

    def load(self) -> bool:
        """Load the current version. False when missing or damaged (the caller rebuilds).
        A version that another process replaced and removed while this one read it (a
        writer's save: at 100,000 chunks a load takes seconds) is not damaged: the one the
        pointer names now is loaded instead of rebuilding from Chroma."""
        name = self.pointer()
        for tries in range(1, LOAD_TRIES + 1):
            try:
                return self._load(name)
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
        return False

    def _load(self, name: str | None) -> bool:
        """Load version ``name``. Raises ``FileNotFoundError`` when a file of it is gone;
        False when it is otherwise damaged or made otherwise."""
        if name is None:
            return False
        folder = self.directory / name
        try:
            got = self._manifest(name)
            if got is None:
                return False
            manifest, docs = got
            scoring = self._scoring()
            saved = {key: manifest.get(key, _FORMAT_4_SCORING.get(key)) for key in scoring}
            if saved != scoring:
                # an index saved with other parameters would rank by them, not by these
                log.info(
                    "BM25 index at %s was saved with %s, %s are asked for; it will be "
                    "rebuilt from Chroma",
                    folder,
                    saved,
                    scoring,
                )
                return False
            model = bm25s.BM25.load(str(folder / "bm25s"), allow_pickle=False) if docs else None
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("BM25 index at %s is damaged (%s); it will be rebuilt", folder, exc)
            return False
        self._docs, self._bm25 = docs, model
        self._checksum = manifest["checksum"]
        self._loaded_pointer = name
        return True

    def matches(self, ids: Sequence[str]) -> bool:
        """Whether this index holds exactly the chunks ``ids`` (count and checksum)."""
        return len(self._docs) == len(ids) and self._checksum == ids_checksum(ids)

    @property
    def version(self) -> str | None:
        """The name of the saved version this one is (saved or loaded), None when neither."""
        return self._loaded_pointer

    def is_stale(self) -> bool:
        """True when another process saved a newer version since we loaded ours."""
        return self.pointer() != self._loaded_pointer

    @property
    def checksum(self) -> str:
        return self._checksum

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
        the question's is asked for (see ``search``)."""
        tokens = terms(query, self.pair_weight if pairs else 0)
        if self._bm25 is None:
            return np.zeros(0, dtype=np.float32)
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:
            return np.zeros(len(self._docs), dtype=np.float32)
        return self._bm25.get_scores(known)

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
