"""Generated datasets for tests and demos: deterministic, tiny-model learnable, with ~5% label noise.

- `synthetic_sentiment`: positive/negative sentences of 5-60 words; sentiment words of the label
  outnumber those of the other label, the rest is neutral filler. train 800 / dev 200 / test 200.
- `synthetic_domains`: the same in four domains (books, dvd, electronics, kitchen), half the sentiment
  words domain-specific; `domain` set. Per split and domain 400 / 100 / 100 (1600 / 400 / 400 in all).
- `synthetic_pairs`: (text, text_pair, label "1"/"0") pairs over 12 topics; "1" pairs share most content
  words, "0" pairs come from another topic or use other words of the same topic. 800 / 200 / 200.
"""

from __future__ import annotations

import random
from typing import ClassVar

from etk_core.data.datasets.splits import check_split
from etk_core.interfaces import Dataset, Record

NOISE = 0.05
SIZES = {"train": 800, "dev": 200, "test": 200}
SEEDS = {"train": 11, "dev": 22, "test": 33}

POSITIVE = ("good great excellent wonderful love loved enjoyable brilliant amazing delightful superb fantastic "
            "pleasant recommend perfect charming solid fun beautiful impressive").split()
NEGATIVE = ("bad terrible awful boring hate hated poor disappointing waste dull horrible mediocre annoying "
            "broken worst weak ugly useless painful sloppy").split()
FILLER = ("the a this that it was is and but with of to in for on thing part time day really very quite just "
          "also then after before we i my our they some every first second overall again one more still "
          "here there about around from when while").split()
DOMAIN_WORDS = {
    "books": ("novel author chapter pages plot characters story writing", "gripping insightful moving",
              "predictable shallow tedious"),
    "dvd": ("film movie scenes actors director ending soundtrack disc", "hilarious stunning captivating",
            "overacted forgettable unwatchable"),
    "electronics": ("battery screen charger cable device sound speaker remote", "reliable crisp sturdy",
                    "defective flimsy overheats"),
    "kitchen": ("pan knife blender kettle lid handle pot oven", "durable sharp spotless",
                "rusty leaky dented"),
}
TOPICS = [words.split() for words in (
    "bank account card payment refund money transfer balance fee loan credit deposit",
    "flight airport ticket seat luggage boarding delay gate airline passport visa trip",
    "doctor hospital medicine fever pain appointment nurse clinic symptoms treatment dose health",
    "phone battery screen charger app update signal camera storage password wifi reset",
    "recipe oven flour sugar butter bake dough cake bread salt pepper dinner",
    "football match goal team player coach league season score stadium referee fans",
    "school teacher exam homework class student grade lesson course essay library campus",
    "car engine tire brake fuel garage repair license parking road traffic insurance",
    "garden plant flower seed soil water tree grass weed sunlight pot fence",
    "music song guitar concert band album singer lyrics piano drum ticket stage",
    "weather rain snow storm wind forecast temperature cloud sunny cold heat umbrella",
    "order package delivery shipping tracking address seller return parcel courier store cart",
)]


def _sentence(rng: random.Random, own: list[str], other: list[str], filler: list[str]) -> str:
    length = rng.randint(5, 60)
    strong = max(1, round(length * rng.uniform(0.08, 0.2)))
    opposite = rng.randint(0, (strong - 1) // 2)
    words = [rng.choice(own) for _ in range(strong - opposite)] + [rng.choice(other) for _ in range(opposite)]
    words += [rng.choice(filler) for _ in range(max(0, length - len(words)))]
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def _noisy(rng: random.Random, label: str, labels: tuple[str, str]) -> str:
    return (labels[1] if label == labels[0] else labels[0]) if rng.random() < NOISE else label


class SyntheticSentiment(Dataset):
    """Generated binary sentiment sentences."""

    name = "synthetic_sentiment"
    description = "generated positive/negative sentences (train 800, dev 200, test 200), ~5% label noise"
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "test")

    def records(self, split: str) -> list[Record]:
        check_split(self.name, split, self.splits)
        rng = random.Random(SEEDS[split])
        out = []
        for index in range(SIZES[split]):
            label = "positive" if rng.random() < 0.5 else "negative"
            own, other = (POSITIVE, NEGATIVE) if label == "positive" else (NEGATIVE, POSITIVE)
            text = _sentence(rng, own, other, FILLER)
            out.append({"text": text, "label": _noisy(rng, label, ("positive", "negative")),
                        "_where": f"{self.name}:{split} row {index + 1}"})
        return out


class SyntheticDomains(Dataset):
    """Generated sentiment sentences in four domains with partly domain-specific words."""

    name = "synthetic_domains"
    description = "generated sentiment in 4 domains (domain column), 1600/400/400, ~5% label noise"
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "test")

    def records(self, split: str) -> list[Record]:
        check_split(self.name, split, self.splits)
        rng = random.Random(SEEDS[split] + 100)
        out = []
        for index in range(SIZES[split] * 2):
            domain = sorted(DOMAIN_WORDS)[index % len(DOMAIN_WORDS)]
            nouns, good, bad = (words.split() for words in DOMAIN_WORDS[domain])
            label = "positive" if rng.random() < 0.5 else "negative"
            pos, neg = POSITIVE[:10] + good * 3, NEGATIVE[:10] + bad * 3
            own, other = (pos, neg) if label == "positive" else (neg, pos)
            text = _sentence(rng, own, other, FILLER + nouns * 2)
            out.append({"text": text, "label": _noisy(rng, label, ("positive", "negative")), "domain": domain,
                        "_where": f"{self.name}:{split} row {index + 1}"})
        return out


class SyntheticPairs(Dataset):
    """Generated paraphrase-like sentence pairs."""

    name = "synthetic_pairs"
    description = "generated sentence pairs, label 1 = same content (train 800, dev 200, test 200)"
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "test")

    def records(self, split: str) -> list[Record]:
        check_split(self.name, split, self.splits)
        rng = random.Random(SEEDS[split] + 200)
        out = []
        for index in range(SIZES[split]):
            topic = rng.randrange(len(TOPICS))
            words = rng.sample(TOPICS[topic], 5)
            label = "1" if rng.random() < 0.5 else "0"
            if label == "1":
                pair = rng.sample(words, 4) + [rng.choice(TOPICS[topic])]
            elif rng.random() < 0.5:
                pair = rng.sample(TOPICS[(topic + rng.randrange(1, len(TOPICS))) % len(TOPICS)], 5)
            else:
                pair = rng.sample([word for word in TOPICS[topic] if word not in words], 5)
            out.append({"text": self._say(rng, words), "text_pair": self._say(rng, pair),
                        "label": _noisy(rng, label, ("1", "0")), "_where": f"{self.name}:{split} row {index + 1}"})
        return out

    @staticmethod
    def _say(rng: random.Random, content: list[str]) -> str:
        words = list(content) + [rng.choice(FILLER) for _ in range(rng.randint(2, 8))]
        rng.shuffle(words)
        return " ".join(words).capitalize() + "?"
