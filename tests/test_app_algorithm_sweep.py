"""Every registered app x algorithm combination either trains on tiny data (an artifact that evaluates) or is
refused with one line and exit code 2 before a run folder exists."""

from __future__ import annotations

import pytest

from etk_core.data.datasets.shared import shared_datasets_dir
from etk_core.registry import get_registry
from etk_core.testing import needs_packaged_minilm, run_cli

pytestmark = needs_packaged_minilm()

#: role -> source per app (tiny real or generated data); `source` is the other domain of a transfer pair.
DATA = {
    "text_classify": {"train": "synthetic_sentiment:train", "target": "synthetic_sentiment:train",
                      "source": "synthetic_domains:train", "dev": "synthetic_sentiment:dev"},
    "text_match": {"train": "synthetic_pairs:train", "target": "synthetic_pairs:train",
                   "source": "synthetic_pairs:test", "dev": "synthetic_pairs:dev"},
    "mrc": {role: "squad_sample:train" for role in ("train", "target", "source", "dev")},
    "sequence_labeling": {role: "conll2003:dev_500" for role in ("train", "target", "source", "dev")},
}
NEEDS_SHARED = {"mrc", "sequence_labeling"}


def _pairs() -> list[tuple[str, str]]:
    return [(app, algo) for app in get_registry("apps").names() for algo in get_registry("algorithms").names()]


@pytest.mark.parametrize(("app", "algo"), _pairs())
def test_app_algorithm_trains_or_is_refused_cleanly(tmp_path, app, algo):
    from etk_core.plugins import reset_plugin_manager
    from etk_core.registry import get_component

    if app not in DATA:
        pytest.skip(f"no tiny data for app {app!r} in this sweep")
    if app in NEEDS_SHARED and not shared_datasets_dir():
        pytest.skip("needs the shared datasets folder (ETK_DATASETS_DIR)")
    reset_plugin_manager()
    cls = get_component("algorithms", algo)
    roles = [*cls.roles, *(role for role in ("dev",) if role in cls.optional_roles)]
    out = tmp_path / "run"
    args = ["train", "--app", app, "--algo", algo, "--model", "bert-tiny", "--output", str(out), "--no-export",
            *[item for role in roles for item in ("--data", f"{role}={DATA[app][role]}")],
            *[item for value in ("train.max_steps=2", "train.batch_size=4", "train.max_length=48",
                                 "data.max_rows=24", "train.threads=1", "algo.trials=2", "algo.initial_trials=2",
                                 "algo.topics=2", "algo.reward_dev_size=8", "algo.distance_sample=4")
              if not value.startswith("algo.") or value[5:].split("=")[0] in cls.options
              for item in ("--set", value)]]
    result = run_cli(args)
    if result.exit_code == 0:
        assert (out / "model" / "etk.json").is_file(), result.output
        evaluated = run_cli(["evaluate", str(out), "--data", f"dev={DATA[app]['dev']}"])
        assert evaluated.exit_code == 0, evaluated.output
    else:
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2, result.output
        assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
        assert "Traceback" not in result.output
        assert not out.exists(), f"{app} x {algo} was refused after writing {sorted(out.iterdir())}"


@pytest.mark.parametrize("args", [["--strategy", "megatron", "--set", "strategy.tp=2"],
                                  ["--strategy", "ddp", "--set", "strategy.comm_hook=fp16"],
                                  ["--strategy", "ddp", "--set", "strategy.compile=true"]])
def test_what_a_strategy_cannot_run_is_refused_before_anything_is_written(tmp_path, args):
    out = tmp_path / "run"
    result = run_cli(["train", "--app", "text_classify", "--algo", "mgtl", "--model", "bert-tiny",
                      "--data", "target=synthetic_sentiment:train", "--data", "source=synthetic_domains:train",
                      "--data", "dev=synthetic_sentiment:dev", "--output", str(out), *args])
    assert result.exit_code == 2, result.output
    assert "error:" in result.stderr and ("single or ddp" in result.stderr or "own step" in result.stderr)
    assert not out.exists()
