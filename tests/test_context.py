"""The prompt's budget: each resource cut to the sentences that matter for the question,
the page kept, the founding instruction unchanged at the start of every prompt."""

from __future__ import annotations

from app.context import GAP, CachedEmbedder, select_excerpts, tokens
from llm.prompt import FOUNDING_RULES, build_prompt
from retrieval.types import Hit

FILLER = [
    "The canteen on the ground floor opens at 11:30 and closes at 14:00.",
    "Visitors sign in at the reception desk and wear a badge at all times.",
    "Printers on every floor print double-sided by default to save paper.",
    "The fire assembly point is the car park behind building C.",
    "Lockers in the basement are assigned by the facilities team for a year.",
    "Meeting rooms are booked in the calendar and released after 15 minutes.",
]
LEAVE = "Full-time employees receive 28 working days of paid annual leave per calendar year."
CARRY = "Up to 5 unused days may be carried over until 31 March of the following year."


def _hits() -> list[Hit]:
    long_text = " ".join(FILLER[:3] + [LEAVE, CARRY] + FILLER[3:])
    return [
        Hit("a", long_text, "handbook.pdf", 3, 0.9, 0.6),
        Hit("b", " ".join(FILLER), "handbook.pdf", 8, 0.5, 0.3),
        Hit("c", "Remote work: up to 3 days a week from home.", "memo.md", None, 0.4, 0.3),
    ]


def test_a_long_resource_is_cut_to_its_relevant_sentences(embedder):
    hits = _hits()
    question = "How many days of paid annual leave do full-time employees get?"
    excerpts = select_excerpts(question, hits, embedder, budget=80)
    first = excerpts.resources[0]
    assert LEAVE in first.text  # the sentence that answers it
    assert "fire assembly point" not in first.text and len(first.text) < len(hits[0].text)
    assert (first.source, first.page) == ("handbook.pdf", 3)  # the page survives the cut
    for part in first.text.split(GAP):  # runs of the chunk's own text, verbatim
        assert part in hits[0].text
    assert sum(tokens(r.text) for r in excerpts.resources) <= 80 + 25  # a best sentence may overrun
    assert excerpts.resources[2].text == hits[2].text  # short enough to stay whole
    assert excerpts.preview is not None and excerpts.preview.quote == LEAVE


def test_no_budget_or_a_large_one_keeps_whole_chunks(embedder):
    hits = _hits()
    for budget in (None, 10_000):
        excerpts = select_excerpts("annual leave?", hits, embedder, budget=budget)
        assert [r.text for r in excerpts.resources] == [h.text for h in hits]


def test_the_founding_instruction_starts_every_prompt_byte_for_byte(embedder):
    hits = _hits()
    prompts = [
        build_prompt(q, select_excerpts(q, hits, embedder, budget=b).resources)
        for q, b in [("Annual leave?", 60), ("Where do visitors sign in?", 200), ("x", None)]
    ]
    assert all(p.startswith(FOUNDING_RULES + "\n\nQuestion: ") for p in prompts)


def test_cached_embedder_embeds_each_text_once(embedder):
    calls: list[list[str]] = []

    class Counting:
        def embed(self, texts):
            calls.append(list(texts))
            return embedder.embed(texts)

    cached = CachedEmbedder(Counting(), size=3)
    first = cached.embed(["a b", "c d", "a b"])
    again = cached.embed(["c d", "e f"])
    assert calls == [["a b", "c d"], ["e f"]]
    assert first[0] == first[2] and again[0] == first[1]
    cached.embed(["g h", "i j"])  # evicts the oldest
    cached.embed(["a b"])
    assert calls[-1] == ["a b"]
