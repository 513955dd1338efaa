"""Small text utilities shared by the examples (pure Python, no dependencies)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

_STOPWORD_TEXT = """a an and are as at be but by can do does for from has have how i if in into is it its of on or
    so that the their them then there these they this to was we were what when where which who why will
    with you your"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def tokens(text: str) -> list[str]:
    """Lower-cased words without stopwords."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]


def sentences(text: str) -> list[str]:
    """Sentences of ``text`` (split after ``.``, ``!`` or ``?``)."""
    return [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]


class TfIdfIndex:
    """A tiny tf-idf index over ``(doc_id, text)`` pairs, scored by cosine similarity."""

    def __init__(self, docs: Iterable[tuple[str, str]]) -> None:
        self.ids: list[str] = []
        self.texts: dict[str, str] = {}
        counts: list[Counter[str]] = []
        for doc_id, text in docs:
            self.ids.append(doc_id)
            self.texts[doc_id] = text
            counts.append(Counter(tokens(text)))
        n = len(counts)
        df: Counter[str] = Counter(term for c in counts for term in c)
        self.idf = {term: math.log((1 + n) / (1 + f)) + 1.0 for term, f in df.items()}
        self.vectors = [self._weigh(c) for c in counts]

    def _weigh(self, counts: Counter[str]) -> dict[str, float]:
        vector = {t: (1 + math.log(f)) * self.idf.get(t, 0.0) for t, f in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {t: v / norm for t, v in vector.items()}

    def search(self, query: str, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` best ``(doc_id, score)`` pairs for ``query`` (score > 0 only)."""
        q = self._weigh(Counter(tokens(query)))
        scored = [
            (doc_id, sum(w * vec.get(t, 0.0) for t, w in q.items()))
            for doc_id, vec in zip(self.ids, self.vectors, strict=True)
        ]
        ranked = sorted((s for s in scored if s[1] > 0), key=lambda s: (-s[1], s[0]))
        return [(doc_id, round(score, 4)) for doc_id, score in ranked[:k]]


def best_sentences(text: str, query: str, n: int = 2) -> list[str]:
    """The ``n`` sentences of ``text`` sharing most words with ``query``, in text order."""
    wanted = set(tokens(query))
    found = sentences(text)
    scored = sorted(range(len(found)), key=lambda i: (-len(wanted & set(tokens(found[i]))), i))[:n]
    return [found[i] for i in sorted(scored)]


def top_terms(texts: Sequence[str], n: int = 5) -> list[str]:
    """The ``n`` most frequent non-stopword terms across ``texts``."""
    counts = Counter(t for text in texts for t in tokens(text))
    return [term for term, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
