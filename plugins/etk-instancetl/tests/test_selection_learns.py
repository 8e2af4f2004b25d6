"""Each selector, on synthetic data where half of the source is drawn like the target and half is noise
(other words, labels flipped), keeps measurably more of the useful half; mgtl's discriminator ends near
chance on selected source vs target; the baselines train on the same roles."""

from __future__ import annotations

import json
import random

import pytest

from etk_core.testing import needs_packaged_minilm, run_cli

pytestmark = needs_packaged_minilm()

POSITIVE = "good great excellent wonderful love enjoyable brilliant superb".split()
NEGATIVE = "bad terrible awful boring hate poor dull horrible".split()
TARGET_WORDS = "book novel author chapter story pages plot writer reading library".split()
NOISE_WORDS = "phone battery screen charger cable signal camera speaker button keyboard".split()
SOURCE_SIZE = 400  # rows 1..200 useful, 201..400 noise


def _sentence(rng: random.Random, words: list[str], label: str) -> str:
    sentiment = POSITIVE if label == "pos" else NEGATIVE
    tokens = rng.sample(TARGET_WORDS, 3) + rng.sample(words, 2) + rng.sample(sentiment, 1)
    rng.shuffle(tokens)
    return " ".join(tokens)


def _rows(rng: random.Random, count: int, words: list[str], flip: bool) -> list[dict[str, str]]:
    rows = []
    for _ in range(count):
        label = rng.choice(["pos", "neg"])
        shown = {"pos": "neg", "neg": "pos"}[label] if flip else label
        rows.append({"text": _sentence(rng, words, label), "label": shown})
    return rows


def _write(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("instancetl-data")
    rng = random.Random(7)
    source = _rows(rng, SOURCE_SIZE // 2, TARGET_WORDS, flip=False) + _rows(rng, SOURCE_SIZE // 2, NOISE_WORDS,
                                                                            flip=True)
    return {"source": _write(folder / "source.jsonl", source),
            "target": _write(folder / "target.jsonl", _rows(rng, 160, TARGET_WORDS, flip=False)),
            "dev": _write(folder / "dev.jsonl", _rows(rng, 200, TARGET_WORDS, flip=False))}


def _train(data, out, algo: str, *extra: str) -> tuple[list[dict], dict]:
    """One `etk train` run on the synthetic data: its selection report rows and its final figures."""
    from etk_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    args = ["train", "--app", "text_classify", "--algo", algo, "--model", "bert-tiny",
            "--data", f"source={data['source']}", "--data", f"target={data['target']}",
            "--data", f"dev={data['dev']}", "--set", "app.model=textcnn", "--set", "app.embedding_dim=32",
            "--set", "app.num_filters=32", "--set", "app.classic_dropout=0.1", "--set", "train.lr=2e-3",
            "--set", "train.batch_size=16", "--set", "train.max_length=32", "--set", "train.threads=1",
            "--set", "train.eval_every=50", "--no-export", "--json", "--output", str(out), *extra]
    result = run_cli(args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "selection.jsonl").read_text().splitlines()] \
        if (out / "selection.jsonl").is_file() else []
    return rows, json.loads(result.output.strip().splitlines()[-1])


def _useful_share(rows, key: str) -> tuple[float, float]:
    """Mean of `key` over the useful half and over the noise half (rows are labelled by their source row)."""
    useful = [float(r[key]) for r in rows if int(r["where"].rsplit(" ", 1)[-1].split(":")[-1]) <= SOURCE_SIZE // 2]
    noise = [float(r[key]) for r in rows if int(r["where"].rsplit(" ", 1)[-1].split(":")[-1]) > SOURCE_SIZE // 2]
    return sum(useful) / len(useful), sum(noise) / len(noise)


SELECTOR = ["--set", "train.max_steps=800", "--set", "algo.episode_steps=1", "--set", "algo.reward_metric=neg_loss",
            "--set", "algo.warm_start_steps=10", "--set", "algo.reward_dev_size=200", "--set", "algo.source_weight=3",
            "--set", "algo.source_batch_size=32"]


def test_rtl_selector_learns_from_the_delayed_reward(data, tmp_path):
    """rtl's mechanics with its own reward: every source example is seen, the selector is updated each episode
    and its keep probabilities move away from the initial 0.5. (Its margin on useful vs noise is not asserted:
    with the dev reward of the spec it does not show in runs of this length; see the plugin README.)"""
    rows, _ = _train(data, tmp_path / "rtl", "rtl", *SELECTOR)
    assert len(rows) == SOURCE_SIZE and all(r["seen"] >= 1 for r in rows)
    history = [json.loads(line) for line in (tmp_path / "rtl" / "metrics.jsonl").read_text().splitlines()]
    updates = [h for h in history if "actor_loss" in h]
    assert len(updates) == 800 - 10  # one per step after the warm start (episode_steps=1)
    assert max(abs(r["probability"] - 0.5) for r in rows) > 0.01


def test_rtl_keeps_the_useful_half_when_its_dev_metric_rewards_it(data, tmp_path, monkeypatch):
    """The whole rtl loop (states from the TL module, episodes, the delayed reward as the change of a metric,
    the actor-critic update) with the dev metric replaced by a test double that counts useful minus noisy
    source examples kept so far: the selector must end up keeping the useful half. Breaks if rewards are
    matched to the wrong episode, have the wrong sign, or the states do not reach the actor."""
    from etk_instancetl.reinforced import Rtl

    real_select = Rtl.select

    def counting_select(self, step, source, target):
        actions = real_select(self, step, source, target)
        signs = [1.0 if index < SOURCE_SIZE // 2 else -1.0 for index in source["indices"]]
        self.oracle = getattr(self, "oracle", 0.0) + sum(a * s for a, s in zip(actions.tolist(), signs)) / len(signs)
        return actions

    monkeypatch.setattr(Rtl, "select", counting_select)
    monkeypatch.setattr(Rtl, "reward_metric", lambda self: getattr(self, "oracle", 0.0))
    args = [a if a != "train.max_steps=800" else "train.max_steps=400" for a in SELECTOR]
    rows, _ = _train(data, tmp_path / "rtl", "rtl", *args)
    useful, noise = _useful_share(rows, "probability")
    assert useful > noise + 0.2, (useful, noise)  # measured 0.64 vs 0.32


def test_mgtl_keeps_more_useful_source_and_fools_its_discriminator(data, tmp_path):
    rows, figures = _train(data, tmp_path / "mgtl", "mgtl", *SELECTOR)
    useful, noise = _useful_share(rows, "probability")
    assert useful > noise + 0.4, (useful, noise)  # measured 0.78 vs 0.17 (0.55 vs 0.25 before standardising)
    final = json.loads((tmp_path / "mgtl" / "model" / "etk.json").read_text())
    history = [json.loads(line) for line in (tmp_path / "mgtl" / "metrics.jsonl").read_text().splitlines()]
    accuracy = [h["discriminator_accuracy"] for h in history if "discriminator_accuracy" in h]
    assert final["metrics"]["accuracy"] > 0.6
    # D tells target from the source the selector keeps less well at the end than it could early on
    # (moving towards chance; it does not reach 0.5 because the selection stays stochastic)
    late = sum(accuracy[-50:]) / 50
    assert late < 0.85 and late < max(accuracy[:400]) - 0.1, (max(accuracy[:400]), late)
    assert figures["mmd_selected"] < figures["mmd_rejected"], figures  # the kept source is the target-like one


def test_ruder_plank_selects_useful_source(data, tmp_path):
    rows, figures = _train(data, tmp_path / "rp", "ruder_plank", "--set", "train.max_steps=20",
                           "--set", "algo.trials=12", "--set", "algo.select_size=100", "--set", "algo.topics=4")
    selected = [r for r in rows if r["selected"]]
    useful = sum(int(r["where"].split(":")[-1]) <= SOURCE_SIZE // 2 for r in selected)
    assert len(selected) == 100 and useful >= 70, useful
    history = [json.loads(line) for line in (tmp_path / "rp" / "metrics.jsonl").read_text().splitlines()]
    assert sum("trial" in h for h in history) == 12
    assert figures["mmd_selected"] < figures["mmd_rejected"], figures


@pytest.mark.parametrize("algo", ["tgt_only", "src_only", "mixed", "tl_base"])
def test_baselines_train_on_the_same_roles(data, tmp_path, algo):
    _train(data, tmp_path / algo, algo, "--set", "train.max_steps=60")
    final = json.loads((tmp_path / algo / "model" / "etk.json").read_text())
    assert final["metrics"]["accuracy"] > 0.5
    history = [json.loads(line) for line in (tmp_path / algo / "metrics.jsonl").read_text().splitlines()]
    kept = [h["kept"] for h in history if "kept" in h]
    assert (kept == []) == (algo == "tgt_only") and all(k == 1.0 for k in kept)


def test_selectors_need_a_dev_set(data, tmp_path):
    result = run_cli(["train", "--app", "text_classify", "--algo", "rtl", "--model", "bert-tiny",
                      "--data", f"source={data['source']}", "--data", f"target={data['target']}",
                      "--output", str(tmp_path / "x")])
    assert result.exit_code == 2 and "needs --data dev=PATH" in result.output, result.output
    assert not (tmp_path / "x").exists()
