"""`squad_sample` and `quac_sample`: tiny real SQuAD v1.1 / QuAC excerpts (shared folder), format fixtures only."""

from __future__ import annotations

from typing import ClassVar

from etk_core.errors import DataError
from etk_core.interfaces import Dataset, Record

FOLDER = "qa_samples"


class _QaSample(Dataset):
    """A shared-folder file read by the `squad` reader; every split is the whole file."""

    splits: ClassVar[tuple[str, ...]] = ("all", "train", "dev")
    file: ClassVar[str] = ""

    def records(self, split: str) -> list[Record]:
        from etk_core.data.datasets import shared_datasets_dir
        from etk_core.data.load import load_records

        if split not in self.splits:
            raise DataError(f"dataset {self.name} has no split {split!r}; splits: {', '.join(self.splits)}")
        root = shared_datasets_dir()
        path = root / FOLDER / self.file if root is not None else None
        if path is None or not path.is_file():
            where = f"{path} is missing" if path is not None else "no shared/datasets folder was found"
            raise DataError(f"dataset {self.name} needs {FOLDER}/{self.file} of the shared datasets folder "
                            f"({where}); set ETK_DATASETS_DIR=/path/to/shared/datasets")
        return load_records(str(path), {}, required=("text", "text_pair"))


class SquadSample(_QaSample):
    name = "squad_sample"
    description = "SQuAD v1.1 excerpt (shared folder): 5 questions on 2 paragraphs; all = train = dev, a fixture"
    file = "squad_sample.json"


class QuacSample(_QaSample):
    name = "quac_sample"
    description = "QuAC excerpt (shared folder): 2 dialogues, 12 questions with history; all = train = dev, a fixture"
    file = "quac_sample.json"
