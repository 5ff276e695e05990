"""Evaluation metrics as pure functions: answer normalisation, accuracy, token F1, token
presence, rank metrics (hit@k, MRR, nDCG, recall) and percentiles.

Nothing here touches a model or a store, so each metric is unit-tested on hand-checked cases.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

# ---- answer normalisation -----------------------------------------------------------------
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_ORDINALS = {
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "sixth": "6th", "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
    "eleventh": "11th", "twelfth": "12th",
}  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})
_CITATION = re.compile(r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]")  # the "[1]", "[1, 2]" answers cite with
# every ASCII punctuation mark plus the typographic ones models like to write
_PUNCT = re.compile(
    "[" + re.escape(string.punctuation) + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026]"
)


def _numbers_to_digits(words: list[str]) -> list[str]:
    """ "twenty eight" -> "28", "three" -> "3", "fourth" -> "4th"; other words unchanged."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _TENS:
            value = _TENS[w]
            if i + 1 < len(words) and words[i + 1] in _UNITS and 0 < _UNITS[words[i + 1]] < 10:
                value += _UNITS[words[i + 1]]
                i += 1
            out.append(str(value))
        elif w in _UNITS:
            out.append(str(_UNITS[w]))
        elif w in _ORDINALS:
            out.append(_ORDINALS[w])
        else:
            out.append(w)
        i += 1
    return out


def normalize_tokens(text: str) -> list[str]:
    """The answer's words for comparison: citation marks like "[2]" removed, lower case,
    punctuation and articles dropped, number words written as digits ("Three weeks [1]." ->
    ["3", "weeks"]).

    SQuAD's normalisation (Rajpurkar et al., EMNLP 2016, the official evaluation script),
    plus number words, since "three" and "3" are the same answer. Punctuation becomes a space,
    on both sides of a comparison alike, so "22.5" matches "22.5" and "10:00" matches "10:00".
    """
    text = _CITATION.sub(" ", text)
    words = _PUNCT.sub(" ", text.lower()).split()
    return [w for w in _numbers_to_digits(words) if w not in _ARTICLES]


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """True when ``needle`` occurs as consecutive tokens in ``haystack``."""
    n = len(needle)
    if n == 0:
        return False
    return any(list(haystack[i : i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def answer_correct(prediction: str, accepted: Iterable[str]) -> bool:
    """An accepted answer appears in the prediction, word for word after normalisation
    ("28" matches "You get 28 days [1]." but not "280")."""
    predicted = normalize_tokens(prediction)
    return any(_contains(predicted, normalize_tokens(a)) for a in accepted)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1: harmonic mean of token precision and recall, tokens as a bag."""
    pred, ref = normalize_tokens(prediction), normalize_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, accepted: Iterable[str]) -> float:
    """Token F1 against the closest accepted answer (0 when there is none)."""
    return max((token_f1(prediction, a) for a in accepted), default=0.0)


def token_presence(prediction: str, tokens: Iterable[str]) -> float:
    """Share of the required tokens found in the prediction (h2o-evals' token presence);
    each token is normalised like an answer, so "In-charge" is found in "in charge"."""
    predicted = normalize_tokens(prediction)
    wanted = [t for t in (normalize_tokens(tok) for tok in tokens) if t]
    if not wanted:
        return 0.0
    return sum(_contains(predicted, t) for t in wanted) / len(wanted)


_VERDICT = re.compile(r"\b(yes|no)\b", re.I)


def parse_judgement(text: str) -> bool | None:
    """The grader's verdict: the first YES or NO in its reply; None when it gave neither."""
    match = _VERDICT.search(text)
    return None if match is None else match.group(1).lower() == "yes"


# ---- ranking ------------------------------------------------------------------------------
def same_source(found: str, expected: str) -> bool:
    """A hit's source names the expected file: the same name, or the same file below the
    folder that was ingested ("HR/HR_Policy.pdf" is "HR_Policy.pdf")."""
    return found == expected or found.endswith("/" + expected)


def first_rank(
    found: Sequence[tuple[str, int | None]], source: str, page: int | None = None
) -> int | None:
    """1-based rank of the first (source, page) that is the expected one; ``page=None``
    accepts any page. None when it is not in the list."""
    for rank, (s, p) in enumerate(found, start=1):
        if same_source(s, source) and (page is None or p == page):
            return rank
    return None


def hit_at(rank: int | None, k: int) -> float:
    return float(rank is not None and rank <= k)


def reciprocal_rank(rank: int | None) -> float:
    """Mean reciprocal rank's term (Voorhees, TREC-8 QA track, 1999): 1/rank, 0 if missed."""
    return 0.0 if rank is None else 1.0 / rank


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains, as BEIR computes it with pytrec_eval (Järvelin and
    Kekäläinen, TOIS 2002): DCG = sum rel_i / log2(i + 1), over the ideal ordering's DCG."""
    dcg = sum(relevance.get(doc, 0) / math.log2(i + 1) for i, doc in enumerate(ranked[:k], start=1))
    ideal = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 1) for i, r in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = {d for d, r in relevance.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


# ---- summaries ----------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks, as
    ``numpy.percentile`` computes it by default; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none (not graded)."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None
