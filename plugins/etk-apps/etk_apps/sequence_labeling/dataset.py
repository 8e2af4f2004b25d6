"""The `conll2003` dataset: CoNLL-2003 English NER (IOB2; PER, ORG, LOC, MISC) from the shared folder.

Splits: `train` (14,041 sentences), `dev` (3,250, valid.txt), `test` (3,453), and fixed subsets `train_2k`,
`dev_500` and `test_500`: the first 2,000 / 500 / 500 sentences of the split after a shuffle with seed 0.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from etk_core.data.datasets.shared import shared_path
from etk_core.data.datasets.splits import check_split, copies, shuffled
from etk_core.interfaces import Dataset, Record

FOLDER = "conll2003"
FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
SUBSETS = {"train_2k": ("train", 2000), "dev_500": ("dev", 500), "test_500": ("test", 500)}


@functools.lru_cache(maxsize=4)
def _read(path: str) -> list[Record]:
    from etk_core.data.load import load_records

    return load_records(path, {}, required=("tokens", "tags"))


class Conll2003(Dataset):
    name = "conll2003"
    description = ("CoNLL-2003 English NER, IOB2 (shared folder): train 14041, dev 3250, test 3453 sentences; "
                   "train_2k, dev_500, test_500 subsets")
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "test", *SUBSETS)

    def records(self, split: str) -> list[Record]:
        check_split(self.name, split, self.splits)
        base, size = SUBSETS.get(split, (split, None))
        records = _read(str(shared_path(self.name, f"{FOLDER}/{FILES[base]}")))
        return copies(records if size is None else shuffled(records, seed=0)[:size])
