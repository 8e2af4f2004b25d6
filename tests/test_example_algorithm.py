"""The example algorithm of docs/plugins.md (examples/etk-hello): the doc shows the file as it is, it passes the
Algorithm contract, and it does what it says: a source with random labels ends up weighted below the target."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

import pytest

from etk_core.testing import AlgorithmContract, metrics_log, needs_packaged_minilm, train_run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "etk-hello" / "etk_hello" / "algorithm.py"

pytestmark = [needs_packaged_minilm(),
              pytest.mark.skipif(not EXAMPLE.is_file(), reason="examples/etk-hello is not in this checkout")]


def test_the_docs_show_the_example_as_it_is():
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- example-algorithm -->\n```python\n(.*?)```", text, re.S)
    assert block, "docs/plugins.md lost its example algorithm block"
    assert block.group(1) == EXAMPLE.read_text(encoding="utf-8")


class TestHelloWeighted(AlgorithmContract):
    component_name = "hello_weighted"
    data: ClassVar[dict[str, str]] = {"target": "synthetic_sentiment:train", "source": "synthetic_domains:train",
                                      "dev": "synthetic_sentiment:dev"}


def test_a_source_with_random_labels_is_weighted_down(tmp_path):
    from etk_core.registry import get_component

    records = get_component("datasets", "synthetic_sentiment")().records("train")
    flipped = tmp_path / "flipped.jsonl"
    flip = {"positive": "negative", "negative": "positive"}
    # every other label flipped: the source's labels say nothing, its loss cannot fall like the target's
    flipped.write_text("".join(json.dumps({"text": r["text"], "label": flip[r["label"]] if i % 2 else r["label"]})
                               + "\n" for i, r in enumerate(records[400:])), encoding="utf-8")
    target = tmp_path / "target.jsonl"
    target.write_text("".join(json.dumps({"text": r["text"], "label": r["label"]}) + "\n" for r in records[:400]),
                      encoding="utf-8")
    run = train_run(tmp_path, ["train", "--app", "text_classify", "--algo", "hello_weighted", "--model", "bert-tiny",
                               "--data", f"target={target}", "--data", f"source={flipped}",
                               "--data", "dev=synthetic_sentiment:dev", "--set", "train.epochs=3",
                               "--set", "train.batch_size=16", "--set", "train.lr=1e-3", "--set", "train.max_length=48",
                               "--set", "train.threads=1", "--no-export"])
    rows = metrics_log(run, "train")
    last = rows[-1]
    # chance is 0.5 on dev; both weights start at 1.0
    assert last["weight_source"] < 0.8 * last["weight_target"], last
    assert {"loss_target", "loss_source", "lr_log_variance"} <= last.keys(), last
    assert max(row["accuracy"] for row in metrics_log(run)) > 0.75


def test_example_reader_refuses_unreadable_files_in_one_line(tmp_path):
    from etk_hello import LinesReader

    from etk_core.errors import DataError

    with pytest.raises(DataError, match=r"no\.lines: cannot read it \(No such file or directory\); check the path"):
        list(LinesReader(str(tmp_path / "no.lines"), {}).rows())
    (tmp_path / "latin.lines").write_bytes(b"fine\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"latin\.lines:2: not UTF-8"):
        list(LinesReader(str(tmp_path / "latin.lines"), {}).rows())
