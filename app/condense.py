"""Follow-up questions made standalone before retrieval.

"And for part-time staff?" finds nothing on its own: the retriever never sees the conversation.
``condense`` turns it into a search query that carries the earlier topic ("vacation days: for
part-time staff?"). Two ways:

- a deterministic rule (always available, instant): a question that ``needs_context`` gets the
  content words of the most recent standalone question in the history put in front of it;
- an optional model rewrite: a short prompt asks the LLM for one standalone question. Its output
  is used only if it looks like a question of reasonable length; otherwise, or if the model
  fails, the rule's query is used. The model is asked only when the rule says the question
  needs context, so a standalone question never costs a model call.

A standalone question is returned unchanged (stripped), whatever the history.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.errors import LLMError
from llm.base import LLM

# Openers that only make sense as a continuation: "and for part-time staff?", "what about ...".
FOLLOW_UP_OPENERS = (
    "and", "also", "but", "or", "so", "then", "same", "what about", "how about", "what if",
    "what else", "anything else", "how come", "why not",
)  # fmt: skip
# Words that point back at something said before.
REFERRING_WORDS = frozenset(
    "it its it's that this these those they them their theirs he she him her his hers same "
    "above former latter".split()
)
# Of those, the possessives, which usually point at a person or group named earlier in the
# same sentence ("Where do employees park their bikes?"): they refer back only when no topic
# word comes before them ("What is their notice period?").
IN_SENTENCE_REFERENTS = frozenset("their his her its".split())
# Function words and question words: what remains after removing them is a question's topic.
STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from into onto about over under
    as than too very just also only even still again more most less much many some any all each
    every no not nor own other such both either neither few one ones
    i me my mine we us our ours you your yours it its it's that this these those they them their
    theirs he she him her his hers there here who whom whose which what when where why how
    is am are was were be been being do does did done doing have has had having get gets got
    getting can could shall should will would may might must let lets let's please tell know
    need want like say said thanks thank ok okay yes yeah hi hello
    same above former latter else anything something way whether""".split()
)
MIN_WORDS = 3  # "Part-time staff?" and "Parking?" are too short to stand alone
MIN_OWN_TOPIC_WORDS = 4  # a question with a pronoun but this many topic words stands alone
MAX_REWRITE_CHARS = 250  # longer model output is an answer or rambling, not a query
HISTORY_TURNS = 3  # turns shown to the model
ANSWER_CHARS = 300  # of each earlier answer shown to the model

_WORD = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")

REWRITE_PROMPT = """Rewrite the follow-up question as one standalone question that can be \
understood without the conversation. Keep its meaning, keep it short, and do not answer it. \
Reply with the question only.

Conversation:
{conversation}

Follow-up question: {question}
Standalone question:"""


def words(text: str) -> list[str]:
    """Lower-case words; hyphenated and apostrophe words ("part-time", "it's") stay whole."""
    return _WORD.findall(text.lower().replace("’", "'"))


def topic_words(text: str) -> list[str]:
    """The content words of ``text``, in order, without repeats: what a search should match."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOPWORDS and (len(word) > 2 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def needs_context(question: str) -> bool:
    """Whether ``question`` leans on the conversation before it. True when it

    - opens like a continuation ("and ...", "what about ...", "how about ..."), or
    - is shorter than ``MIN_WORDS`` words ("Part-time staff?"), or
    - uses a referring word (it, that, they, this, ...) and has fewer than
      ``MIN_OWN_TOPIC_WORDS`` topic words of its own ("Is it paid?", "Can I carry it over?");
      a possessive after a topic word points inside the question ("Where do employees park
      their bikes?" stands alone).

    A heuristic: "Is it allowed to bring dogs to the office?" has enough topic words to stand
    alone; "Dress code?" is flagged, and only costs a little precision when it is.
    """
    tokens = words(question)
    if not tokens:
        return False
    text = " ".join(tokens)
    if any(text == opener or text.startswith(opener + " ") for opener in FOLLOW_UP_OPENERS):
        return True
    if len(tokens) < MIN_WORDS:
        return True
    return _refers_back(tokens) and len(topic_words(question)) < MIN_OWN_TOPIC_WORDS


def _refers_back(tokens: list[str]) -> bool:
    """A referring word that points outside the question: "it", "them", "that", ...
    anywhere, or "their", "his", ... before the question has named anything."""
    named = False
    for token in tokens:
        if token in REFERRING_WORDS and not (named and token in IN_SENTENCE_REFERENTS):
            return True
        named = named or (token not in STOPWORDS and len(token) > 2)
    return False


def rule_condense(question: str, history: Sequence[tuple[str, str]]) -> str:
    """The deterministic rewrite: ``"<earlier topic words>: <question without its opener>"``.

    The earlier topic is that of the most recent question in ``history`` that stood alone, so a
    chain of follow-ups ("and for part-time staff?", "what about interns?") keeps the original
    subject instead of accumulating every follow-up's words. Words the question already has are
    not repeated.
    """
    question = question.strip()
    if not history or not needs_context(question):
        return question
    earlier = [q for q, _ in history if q.strip()]
    if not earlier:
        return question
    source = next((q for q in reversed(earlier) if not needs_context(q)), earlier[-1])
    own = set(words(question))
    topic = [w for w in topic_words(source) if w not in own]
    if not topic:
        return question
    return f"{' '.join(topic)}: {_strip_opener(question)}"


def _strip_opener(question: str) -> str:
    """Drop a leading bare connective: 'And for part-time staff?' -> 'for part-time staff?'."""
    return re.sub(r"^(?:and|also|but|or|so|then)\b[\s,]*", "", question, flags=re.I) or question


def rewrite_prompt(question: str, history: Sequence[tuple[str, str]]) -> str:
    """The prompt for the model rewrite: the last ``HISTORY_TURNS`` turns, answers shortened."""
    lines = []
    for asked, answered in list(history)[-HISTORY_TURNS:]:
        answer = " ".join(answered.split())
        if len(answer) > ANSWER_CHARS:
            answer = answer[:ANSWER_CHARS].rsplit(" ", 1)[0] + " ..."
        lines += [f"User: {asked.strip()}", f"Assistant: {answer}"]
    return REWRITE_PROMPT.format(conversation="\n".join(lines), question=question.strip())


def clean_rewrite(output: str) -> str | None:
    """The model's standalone question, or None when the output is unusable (empty, too long)."""
    for line in output.strip().splitlines():
        line = line.strip()
        if line:
            break
    else:
        return None
    line = re.sub(r"^(?:standalone question|question)\s*:\s*", "", line, flags=re.I)
    line = line.strip().strip("\"'“”").strip()
    if not line or len(line) > MAX_REWRITE_CHARS or not topic_words(line):
        return None
    return line


def condense(question: str, history: Sequence[tuple[str, str]], llm: LLM | None = None) -> str:
    """A standalone search query for ``question`` given the earlier (question, answer) turns.

    Without ``history``, or when the question stands alone, it is returned as it is (stripped).
    With ``llm``, the model rewrites follow-ups; the rule is the fallback.
    """
    question = question.strip()
    if not history or not needs_context(question):
        return question
    fallback = rule_condense(question, history)
    if llm is None:
        return fallback
    try:
        output = "".join(llm.stream(rewrite_prompt(question, history), max_tokens=64))
    except LLMError:
        return fallback  # the answer's own call will report a model that is down
    return clean_rewrite(output) or fallback
