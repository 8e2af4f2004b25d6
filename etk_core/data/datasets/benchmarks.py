"""Benchmark sets read from the shared datasets folder, through the ordinary readers.

- `qqp`: qqp_subset/{train,dev}.json, text/text_pair/label "0"|"1": train 8999, dev 1000.
- `mnli`: mnli/subset/{train,dev}.json (8999 / 1000, no genre) and `kshot`: the 480 LM-BFF rows of
  mnli/kshot/16-*/{train,dev_matched}.tsv with `domain` = genre. Labels entailment/neutral/contradiction.
- `sst2`: glue/SST-2/{train,dev}.tsv, label "0"|"1": train 67349, dev 872.
- `cikm_en`: CIKM AnalytiCup 2018 English pairs (en_q1, en_q2, label "0"|"1"; Spanish translations kept
  as es_q1/es_q2). The 20000 rows are shuffled with seed 0 and cut: test 1000, dev 1000, train 2000;
  `train_full` = the 18000 rows not in dev/test, `full` = all 20000.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from etk_core.data.datasets.shared import shared_path
from etk_core.data.datasets.splits import check_split, copies, cut, shuffled
from etk_core.interfaces import Dataset, Record

CIKM_SCHEMA = "en_q1:str:1,es_q1:str:1,en_q2:str:1,es_q2:str:1,label:str:1"
KSHOT_SEEDS = (13, 21, 42, 87, 100)


@functools.lru_cache(maxsize=16)
def _read(path: str, options: tuple[tuple[str, Any], ...] = ()) -> list[Record]:
    from etk_core.data.load import load_records

    return load_records(path, dict(options), required=("text", "label"))


def read_file(path: Any, **options: Any) -> list[Record]:
    """Records of one shared file (cached per process; copies returned)."""
    return copies(_read(str(path), tuple(sorted(options.items()))))


class _FileDataset(Dataset):
    """A dataset whose splits are files of the shared folder."""

    files: ClassVar[dict[str, str]] = {}
    options_for_files: ClassVar[dict[str, Any]] = {}

    def records(self, split: str) -> list[Record]:
        check_split(self.name, split, self.splits)
        return read_file(shared_path(self.name, self.files[split]), **self.options_for_files)


class Qqp(_FileDataset):
    name = "qqp"
    description = "Quora question pairs subset (shared folder), label 1 = duplicate: train 8999, dev 1000"
    files = {"train": "qqp_subset/train.json", "dev": "qqp_subset/dev.json"}


class Sst2(_FileDataset):
    name = "sst2"
    description = "GLUE SST-2 sentences (shared folder), label 1 = positive: train 67349, dev 872"
    files = {"train": "glue/SST-2/train.tsv", "dev": "glue/SST-2/dev.tsv"}


class Mnli(_FileDataset):
    name = "mnli"
    description = "MultiNLI subset (shared folder): train 8999, dev 1000; kshot 480 with genre as domain"
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "kshot")
    files = {"train": "mnli/subset/train.json", "dev": "mnli/subset/dev.json"}

    def records(self, split: str) -> list[Record]:
        if split != "kshot":
            return super().records(split)
        folder = shared_path(self.name, "mnli/kshot")
        return [record for seed in KSHOT_SEEDS for part in ("train", "dev_matched")
                for record in read_file(folder / f"16-{seed}" / f"{part}.tsv")]


class CikmEnglish(Dataset):
    name = "cikm_en"
    description = "CIKM AnalytiCup 2018 English question pairs (shared folder): train 2000, dev 1000, test 1000"
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "test", "train_full", "full")

    def records(self, split: str) -> list[Record]:
        check_split(self.name, split, self.splits)
        path = shared_path(self.name, "cikm_analyticup2018/cikm_english_train_20180516.txt")
        records = read_file(path, schema=CIKM_SCHEMA, text="en_q1", text_pair="en_q2")
        if split == "full":
            return records
        test, dev, rest = cut(shuffled(records, seed=0), [1000, 1000, len(records) - 2000])
        return {"test": test, "dev": dev, "train": rest[:2000], "train_full": rest}[split]
