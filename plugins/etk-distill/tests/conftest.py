"""Teachers trained once per test session: `tiny_teacher` (bert-tiny, seconds; the contracts' teacher) and
`minilm_teacher` (minilm-l6 fine-tuned, about a minute; the quality checks' teacher)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etk_core.testing import run_cli

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = ["--data", "train=synthetic_sentiment:train", "--data", "dev=synthetic_sentiment:dev"]


def train_teacher(out: Path, model: str, *sets: str) -> Path:
    args = ["train", "--app", "text_classify", "--model", model, *DATA, "--no-export", "--json", "--output", str(out)]
    for item in ("train.batch_size=16", "train.max_length=32", "train.threads=1", *sets):
        args += ["--set", item]
    result = run_cli(args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_teacher(tmp_path_factory.mktemp("tiny") / "teacher", "bert-tiny", "train.max_steps=30",
                         "train.lr=1e-3", "data.max_rows=96")


@pytest.fixture(scope="session")
def minilm_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_teacher(tmp_path_factory.mktemp("minilm") / "teacher", "minilm-l6", "train.max_steps=40",
                         "train.lr=1e-4", "data.max_rows=240")
