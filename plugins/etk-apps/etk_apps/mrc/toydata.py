"""Generated SQuAD-format data for tests and demos: typed questions, and "what else ?" dialogues.

Every passage names one item of each kind (a colour, a number, a person, a city). A question asks for one
kind ("what is the colour ?"), so it needs the question to be read: a reader that ignores it scores about
1 / 4. In the dialogues (QuAC shape) the follow-up "what else ?" is answered by the item listed right after
the previous answer: only the dialogue history tells which one.
"""

from __future__ import annotations

import random
from typing import Any

KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "colour": ("what is the colour ?", tuple("red blue green yellow black white pink brown".split())),
    "number": ("what is the number ?", tuple("two three four five six seven eight nine".split())),
    "name": ("what is the name ?", tuple("anna peter maria john paul lucy mark emma".split())),
    "city": ("what is the city ?", tuple("paris rome london berlin madrid tokyo cairo vienna".split())),
}
FILLER = ("it was a quiet day in the village .", "the farmer walked along the road .",
          "many people came to the market .", "the weather changed in the evening .",
          "nobody knew what would happen next .", "there was a small house near the river .")


def _items(rng: random.Random) -> list[tuple[str, str]]:
    """One (kind, word) per kind, in random order."""
    kinds = list(KINDS)
    rng.shuffle(kinds)
    return [(kind, rng.choice(KINDS[kind][1])) for kind in kinds]


def _join(parts: list[str]) -> tuple[str, list[int]]:
    """Parts joined by spaces and the character offset of each part."""
    starts, length = [], 0
    for part in parts:
        starts.append(length)
        length += len(part) + 1
    return " ".join(parts), starts


def typed_squad(count: int, seed: int = 0, filler: int = 3, asked: tuple[str, ...] = tuple(KINDS)) -> dict[str, Any]:
    """SQuAD v1.1 format: `count` passages (items among `filler` filler sentences), one question each, about
    one of the kinds in `asked`."""
    rng = random.Random(seed)
    paragraphs = []
    for index in range(count):
        items = _items(rng)
        parts = [f"we saw {word} ." for _, word in items] + [rng.choice(FILLER) for _ in range(filler)]
        rng.shuffle(parts)
        context, starts = _join(parts)
        kind, word = rng.choice([item for item in items if item[0] in asked])
        part = parts.index(f"we saw {word} .")
        answer = {"text": word, "answer_start": starts[part] + len("we saw ")}
        qa = {"id": f"q{index}", "question": KINDS[kind][0], "answers": [answer]}
        paragraphs.append({"context": context, "qas": [qa]})
    return {"version": "1.1", "data": [{"title": "typed questions", "paragraphs": paragraphs}]}


def item_dialogues(count: int, seed: int = 0) -> dict[str, Any]:
    """QuAC format: `count` dialogues over "we saw A , B , C and D ." of two turns each: a typed question,
    then "what else ?", whose answer is the item right after the first answer."""
    rng = random.Random(seed)
    paragraphs = []
    for index in range(count):
        items = _items(rng)
        words = [word for _, word in items]
        parts = ["we", "saw", words[0], ",", words[1], ",", words[2], "and", words[3], "."]
        context, starts = _join(parts)
        first = rng.randrange(len(items) - 1)
        qas = []
        for turn, (question, item) in enumerate(((KINDS[items[first][0]][0], first), ("what else ?", first + 1))):
            answer = {"text": words[item], "answer_start": starts[parts.index(words[item])]}
            qas.append({"id": f"d{index}_q#{turn}", "question": question, "answers": [answer],
                        "orig_answer": answer, "followup": "y", "yesno": "x"})
        paragraphs.append({"id": f"d{index}", "context": context, "qas": qas})
    return {"data": [{"title": "what else", "paragraphs": paragraphs}]}
