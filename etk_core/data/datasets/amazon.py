"""Amazon multi-domain sentiment (Blitzer et al., 2007) from `<shared>/amazon_multidomain/<domain>/*.review`.

Each review becomes `text` = title and review text with whitespace collapsed, joined by ". " (just " "
when the title already ends in . ! or ?); `label` = "positive"/"negative" (the file it came from);
`domain`; plus `title`, `rating`, `unique_id`. Splits per domain, fixed: each label's 1000 reviews are
shuffled with seed 0 and cut 800 train / 200 dev, so train 1600 / dev 400 (balanced), `all` 2000.
`amazon` is the four domains together: train 6400 / dev 1600 / all 8000.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import ClassVar

from etk_core.data.datasets.shared import shared_path
from etk_core.data.datasets.splits import check_split, copies, shuffled, stratified
from etk_core.errors import DataError
from etk_core.interfaces import Dataset, Record

DOMAINS = ("books", "dvd", "electronics", "kitchen")
FRACTIONS = {"train": 0.8, "dev": 0.2}
_SPACE = re.compile(r"\s+")


def _clean(text: str | None) -> str:
    return _SPACE.sub(" ", text or "").strip()


def _join(title: str, body: str) -> str:
    if not title:
        return body
    return f"{title} {body}" if title.endswith((".", "!", "?")) else f"{title}. {body}"


def parse_reviews(path: Path, label: str, domain: str) -> list[Record]:
    """The reviews of one .review XML file as records."""
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        message = f"{path}:{exc.position[0]}: not valid XML ({exc}); restore the file from the shared folder"
        raise DataError(message) from None
    out = []
    for index, review in enumerate(root.iter("review"), 1):
        title, body = _clean(review.findtext("title")), _clean(review.findtext("review_text"))
        out.append({"text": _join(title, body), "label": label, "domain": domain, "title": title,
                    "rating": _clean(review.findtext("rating")), "unique_id": _clean(review.findtext("unique_id")),
                    "_where": f"{path} review {index}"})
    return out


@functools.cache
def domain_splits(domain: str, folder: str) -> dict[str, list[Record]]:
    """train/dev/all of one domain (cached per process)."""
    records = [record for label in ("positive", "negative")
               for record in parse_reviews(Path(folder) / domain / f"{label}.review", label, domain)]
    return {**stratified(records, FRACTIONS, seed=0), "all": records}


class AmazonDomain(Dataset):
    """One domain of the Amazon multi-domain sentiment reviews."""

    domain: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "all")

    def records(self, split: str) -> list[Record]:
        check_split(self.name, split, self.splits)
        folder = shared_path(self.name, "amazon_multidomain")
        return copies(domain_splits(self.domain, str(folder))[split])


class AmazonBooks(AmazonDomain):
    name, domain = "amazon_books", "books"
    description = "Amazon book reviews, positive/negative (shared folder): train 1600, dev 400, all 2000"


class AmazonDvd(AmazonDomain):
    name, domain = "amazon_dvd", "dvd"
    description = "Amazon DVD reviews, positive/negative (shared folder): train 1600, dev 400, all 2000"


class AmazonElectronics(AmazonDomain):
    name, domain = "amazon_electronics", "electronics"
    description = "Amazon electronics reviews, positive/negative (shared folder): train 1600, dev 400, all 2000"


class AmazonKitchen(AmazonDomain):
    name, domain = "amazon_kitchen", "kitchen"
    description = "Amazon kitchen reviews, positive/negative (shared folder): train 1600, dev 400, all 2000"


class Amazon(Dataset):
    """All four Amazon domains, with a `domain` column."""

    name = "amazon"
    description = "Amazon reviews of 4 domains with domain column (shared folder): train 6400, dev 1600, all 8000"
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "all")

    def records(self, split: str) -> list[Record]:
        check_split(self.name, split, self.splits)
        folder = str(shared_path(self.name, "amazon_multidomain"))
        records = [record for domain in DOMAINS for record in domain_splits(domain, folder)[split]]
        return copies(records if split == "all" else shuffled(records, seed=0))
