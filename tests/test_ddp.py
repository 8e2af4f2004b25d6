"""`--strategy ddp`: etk launches the workers itself; 2 gloo processes (or 2 "nodes" of one process) with half
the batch each train the same model as one process with the whole batch (same data order, seed, no dropout);
comm hooks stay close."""

from __future__ import annotations

import pytest

from etk_core.testing import artifact_weights, free_port, metrics_log, needs_packaged_minilm, run_cli, train_run

pytestmark = needs_packaged_minilm()

COMMON = ["train", "--app", "text_classify", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
          "--data", "dev=synthetic_sentiment:dev", "--set", "app.model=textcnn", "--set", "app.embedding_dim=32",
          "--set", "app.num_filters=16", "--set", "app.classic_dropout=0.0", "--set", "train.max_steps=8",
          "--set", "train.bucket=false", "--set", "train.lr=3e-3", "--set", "train.max_length=32",
          "--set", "train.eval_every=4", "--set", "train.threads=1", "--no-export"]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("single"), [*COMMON, "--set", "train.batch_size=16"])


def test_ddp_equals_single_process_with_the_whole_batch(tmp_path):
    fp64 = [*COMMON, "--set", "train.precision=fp64"]
    single = train_run(tmp_path / "single", [*fp64, "--set", "train.batch_size=16"])
    ddp = train_run(tmp_path / "ddp", [*fp64, "--strategy", "ddp", "--nproc", "2", "--set", "train.batch_size=8"])
    want, got = artifact_weights(single), artifact_weights(ddp)
    assert want.keys() == got.keys()
    worst = max(float((want[name] - got[name]).abs().max()) for name in want)
    assert worst < 1e-10, worst  # fp64; the all-reduce sums in another order (measured about 1e-15)
    for a, b in zip(metrics_log(single), metrics_log(ddp)):
        assert a["step"] == b["step"] and abs(a["accuracy"] - b["accuracy"]) < 1e-9
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-6  # the loss of both replicas' batches


@pytest.mark.parametrize("hook", ["fp16", "powersgd"])
def test_comm_hooks_change_the_gradients_a_little(single, tmp_path, hook):
    ddp = train_run(tmp_path, [*COMMON, "--strategy", "ddp", "--nproc", "2", "--set", "train.batch_size=8",
                               "--set", f"strategy.comm_hook={hook}"])
    want, got = artifact_weights(single), artifact_weights(ddp)
    worst = max(float((want[name] - got[name]).abs().max()) for name in want)
    assert 0 < worst < 0.05, worst
    assert abs(metrics_log(single)[-1]["accuracy"] - metrics_log(ddp)[-1]["accuracy"]) <= 0.05
    for plain, hooked in zip(metrics_log(single), metrics_log(ddp)):  # the loss curve stays within 0.02
        assert abs(plain["train_loss"] - hooked["train_loss"]) < 0.02, (plain, hooked)


def test_two_nodes_of_one_process_equal_one_process_with_the_whole_batch(single, tmp_path):
    # two "machines" on loopback: the same command twice, node ranks 0 and 1, meeting at a fixed port
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    command = [sys.executable, "-m", "etk_core", *COMMON, "--strategy", "ddp", "--nproc", "1",
               "--set", "train.batch_size=8", "--nnodes", "2", "--master-port", str(free_port()),
               "--output", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen([*command, "--node-rank", str(rank)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    errors = [node.communicate(timeout=300)[1] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], errors
    want, got = artifact_weights(single), artifact_weights(out)
    assert max(float((want[name] - got[name]).abs().max()) for name in want) < 1e-5


def test_bad_node_options_are_one_line_errors(tmp_path):
    result = run_cli([*COMMON, "--strategy", "ddp", "--nnodes", "2", "--output", str(tmp_path / "a")])
    assert result.exit_code == 2 and "--master-port" in result.output
    result = run_cli([*COMMON, "--strategy", "ddp", "--nnodes", "2", "--node-rank", "2", "--master-port", "29999",
                      "--output", str(tmp_path / "b")])
    assert result.exit_code == 2 and "--node-rank 2 must be below --nnodes 2" in result.output
    result = run_cli([*COMMON, "--nnodes", "2", "--master-port", "29999", "--output", str(tmp_path / "c")])
    assert result.exit_code == 2 and "multi-process strategy" in result.output


def test_ddp_trains_a_transformer_with_unused_parameters(tmp_path):
    # text_classify reads last_hidden_state: BERT's pooler gets no gradient, which DDP must accept
    run = train_run(tmp_path, ["train", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
                               "--strategy", "ddp", "--nproc", "2", "--set", "train.max_steps=3",
                               "--set", "train.batch_size=4", "--set", "train.max_length=32", "--no-export"])
    assert (run / "model" / "model.safetensors").is_file()


def test_bad_strategy_options_are_one_line_errors(tmp_path):
    result = run_cli([*COMMON, "--strategy", "ddp", "--set", "strategy.comm_hook=zip", "--output", str(tmp_path / "x")])
    assert result.exit_code == 2 and "strategy.comm_hook" in result.output
    assert not (tmp_path / "x").exists()
    if not __import__("torch").cuda.is_available():
        result = run_cli([*COMMON, "--strategy", "ddp", "--set", "strategy.comm_hook=bf16",
                          "--output", str(tmp_path / "y")])
        assert result.exit_code == 2 and "needs CUDA" in result.output, result.output


def test_algorithms_refuse_a_strategy_they_cannot_run_before_anything_starts(tmp_path):
    result = run_cli(["train", "--app", "text_classify", "--algo", "tgt_only", "--model", "bert-tiny",
                      "--data", "target=synthetic_sentiment:train", "--data", "source=synthetic_sentiment:dev",
                      "--strategy", "megatron", "--output", str(tmp_path / "x")])
    assert result.exit_code == 2 and "runs with --strategy single or ddp" in result.output, result.output
    assert not (tmp_path / "x").exists()
