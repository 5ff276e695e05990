"""Rank fusion: reciprocal rank fusion (optionally weighted) and convex combination of
normalised scores.

Cormack, Clarke and Buettcher, "Reciprocal Rank Fusion outperforms Condorcet and individual
Rank Learning Methods" (SIGIR 2009): score(d) = sum over rankings r of 1 / (k + rank_r(d)),
ranks starting at 1. The constant k = 60 comes from that paper: it damps the weight of the very
first ranks so that one retriever's top hit cannot outvote agreement between retrievers.
A weight per ranking (w_r / (k + rank_r(d))) is the weighted RRF of e.g. Elasticsearch and
Vespa; Bruch, Gai and Ingber ("An Analysis of Fusion Functions for Hybrid Retrieval", ACM
TOIS 2023) find a convex combination of normalised scores at least as good when tuned.
"""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]],
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[tuple[str, float]]:
    """Fuse ranked id lists (best first) into one list of (id, score), best first.

    ``weights`` (one per ranking, default all 1) scale each ranking's 1 / (k + rank). An id
    that appears twice in one ranking counts at its best rank only. Ties keep the order in
    which ids were first seen, so the result is deterministic.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[str] = set()
        for rank, doc_id in enumerate(ranking, start=1):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    order = {doc_id: i for i, doc_id in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


def min_max(scores: Sequence[float]) -> list[float]:
    """Scale scores to [0, 1] by the list's own minimum and maximum (all 1 when they are
    equal). Bruch et al. (2023) call this theoretical-range-free "min-max" normalisation."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi - lo <= 0:
        return [1.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def convex_fusion(
    scored: Sequence[Sequence[tuple[str, float]]], weights: Sequence[float]
) -> list[tuple[str, float]]:
    """Fuse (id, score) lists, best first, as sum_r w_r * minmax_r(score_r(d)); an id missing
    from a list scores 0 there (the normalised minimum). Bruch, Gai and Ingber (TOIS 2023):
    a convex combination of normalised lexical and dense scores."""
    if len(weights) != len(scored):
        raise ValueError(f"{len(weights)} weights for {len(scored)} score lists")
    fused: dict[str, float] = {}
    for ranking, weight in zip(scored, weights, strict=True):
        seen: set[str] = set()
        for (doc_id, _), norm in zip(ranking, min_max([s for _, s in ranking]), strict=True):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            fused[doc_id] = fused.get(doc_id, 0.0) + weight * norm
    order = {doc_id: i for i, doc_id in enumerate(fused)}
    return sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))


def fuse_hybrid(
    dense: Sequence[tuple[str, float]],
    sparse: Sequence[tuple[str, float]],
    *,
    method: str = "convex",
    dense_weight: float = 0.5,
    rrf_k: int = 60,
) -> list[tuple[str, float]]:
    """The hybrid retriever's fusion of its dense and BM25 (id, score) lists, best first.

    ``dense_weight`` is the dense side's share (0.5 = both count alike, the BM25 side gets
    ``1 - dense_weight``): the convex weights of ``convex_fusion``, or RRF weights scaled so
    that 0.5 is the unweighted RRF of Cormack et al.
    """
    if not 0.0 <= dense_weight <= 1.0:
        raise ValueError(f"dense_weight must be within [0, 1], got {dense_weight}")
    weights = [dense_weight, 1.0 - dense_weight]
    if method == "convex":
        return convex_fusion([dense, sparse], weights)
    if method == "rrf":
        return reciprocal_rank_fusion(
            [[d for d, _ in dense], [d for d, _ in sparse]], rrf_k, [2 * w for w in weights]
        )
    raise ValueError(f"unknown fusion {method!r}; choose one of: {', '.join(FUSIONS)}")


FUSIONS = ("convex", "rrf")
