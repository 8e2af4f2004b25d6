"""Entity-level precision, recall and F1 (micro, conlleval rules) and token accuracy over tag sequences."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from etk_apps.sequence_labeling.bio import entities


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """`precision`, `recall`, `f1` over exactly matching entities (same type, same first and last word),
    micro-averaged over sentences as conlleval does; `accuracy` over words; `f1_TYPE` for each entity type."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sequences but {len(predicted)} predicted ones")
    found, right, real = Counter(), Counter(), Counter()
    words = same = 0
    for gold_tags, predicted_tags in zip(gold, predicted):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"a sentence of {len(gold_tags)} gold tags has {len(predicted_tags)} predicted")
        words += len(gold_tags)
        same += sum(g == p for g, p in zip(gold_tags, predicted_tags))
        gold_spans, predicted_spans = set(entities(gold_tags)), set(entities(predicted_tags))
        real.update(kind for kind, _, _ in gold_spans)
        found.update(kind for kind, _, _ in predicted_spans)
        right.update(kind for kind, _, _ in gold_spans & predicted_spans)
    precision = _ratio(sum(right.values()), sum(found.values()))
    recall = _ratio(sum(right.values()), sum(real.values()))
    result = {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
              "accuracy": _ratio(same, words)}
    for kind in sorted(set(real) | set(found)):
        result[f"f1_{kind}"] = _f1(_ratio(right[kind], found[kind]), _ratio(right[kind], real[kind]))
    return result
