"""adabert: the straight-through Gumbel-softmax reaches the architecture weights, a larger β chooses a cheaper
architecture, the searched architecture is saved, printed and rebuilt from the artifact (in a fresh process,
also as ONNX), the derived CNN learns synthetic sentiment and is much smaller and faster than its teacher,
and the Algorithm contract holds (killed in the search or in the fine-tuning, resumed: the same weights)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from etk_core.testing import AlgorithmContract, etk_process, metrics_log, needs_packaged_minilm, run_cli, serving

pytestmark = needs_packaged_minilm()

DATA = ["--data", "train=synthetic_sentiment:train", "--data", "dev=synthetic_sentiment:dev"]
QUICK = ["train.batch_size=16", "train.max_length=32", "train.threads=1", "train.log_every=5"]
#: A small search space for the checks that only need the mechanics (2 cells of width 32).
SMALL = ["model.hidden_size=32", "model.max_cells=2"]
TEXTS = ["a wonderful, moving story", "dull and a waste of time", "great fun, I loved it", "the worst, boring"]


def adabert(out: Path, teacher: Path, *sets: str, export: bool = False) -> Any:
    args = ["train", "--app", "text_classify", "--algo", "adabert", "--model", "adabert-cnn", *DATA, "--json",
            "--output", str(out), "--set", f"model.teacher={teacher}"]
    if not export:
        args.append("--no-export")
    for item in (*QUICK, *sets):
        args += ["--set", item]
    return run_cli(args)


def figures(result: Any) -> dict[str, Any]:
    return json.loads(result.output.strip().splitlines()[-1])


# -- the search's parts ----------------------------------------------------------------------------------


def _tiny_supernet(max_cells: int = 2) -> tuple[Any, Any]:
    from etk_distill.adabert.config import AdaBertConfig
    from etk_distill.adabert.encoder import SearchEncoder
    from etk_distill.adabert.genotype import edges
    from etk_distill.adabert.supernet import Architecture, SearchModel

    config = AdaBertConfig(vocab_size=40, hidden_size=8, max_position_embeddings=16, max_cells=max_cells)
    encoder = SearchEncoder(config)
    architecture = Architecture(len(edges(config.nodes)), max_cells)
    encoder.attach(architecture)
    return SearchModel(encoder, num_labels=2), architecture


def test_gumbel_straight_through_gives_the_architecture_weights_gradients() -> None:
    torch.manual_seed(0)
    model, architecture = _tiny_supernet()
    ids = torch.randint(1, 40, (4, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    labels = torch.tensor([0, 1, 0, 1])
    depth_weights, op_weights = architecture.sample(tau=0.5)
    # hard in the forward pass: one-hot rows
    assert sorted(depth_weights.tolist()) == [0.0, 0.0, 1.0]
    assert torch.equal(op_weights.sum(-1), torch.ones(op_weights.shape[0]))
    assert set(op_weights.flatten().tolist()) <= {0.0, 1.0}
    logits = model.depth_logits({"input_ids": ids, "attention_mask": mask}, op_weights, [0, 1, 2])
    # the depth mixes the heads' losses (the sampled depth may be 0, which no edge reaches: add the deepest)
    losses = {k: torch.nn.functional.cross_entropy(logits[k], labels) for k in logits}
    (sum(depth_weights[k] * losses[k] for k in losses) + losses[2]).backward()
    for parameter in (architecture.edge_logits, architecture.depth_logits):
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all()
        assert parameter.grad.abs().sum() > 0
    # every operation of an edge gets a gradient through the relaxed sample, not only the chosen one
    assert (architecture.edge_logits.grad != 0).sum(-1).min() > 1
    # without gradients only the sampled path runs, and evaluation uses the argmax architecture
    model.eval()
    with torch.no_grad():
        depth = int(architecture.depth_logits.argmax())
        expected = model.depth_logits({"input_ids": ids, "attention_mask": mask},
                                      architecture.argmax_weights()[1], [depth])[depth]
        assert torch.allclose(model(ids, mask)["logits"], expected)


def test_efficiency_loss_is_the_expected_cost_of_the_architecture() -> None:
    from etk_distill.adabert.genotype import COSTS, OPS, Genotype

    _, architecture = _tiny_supernet(max_cells=4)
    uniform = sum(COSTS.values()) / len(OPS)
    assert float(architecture.expected_cost().detach()) == pytest.approx(2 / 4 * uniform)  # E[K] = 2 of 4
    with torch.no_grad():
        architecture.depth_logits[:] = torch.tensor([0.0, 0, 0, 0, 50])  # depth 4 for sure
        architecture.edge_logits[:] = -50
        architecture.edge_logits[:, OPS.index("conv7")] = 50
    assert float(architecture.expected_cost().detach()) == pytest.approx(COSTS["conv7"], rel=1e-4)
    genotype = architecture.genotype()
    assert genotype == Genotype(4, ("conv7",) * 9)
    assert genotype.cost(4) == pytest.approx(COSTS["conv7"]) and genotype.expensive_share() == 1.0
    assert Genotype(0, ("zero",) * 9).cost(4) == 0.0


def test_derived_cell_leaves_zero_edges_out_and_ops_keep_the_length() -> None:
    from etk_distill.adabert.cells import DerivedCell
    from etk_distill.adabert.genotype import OPS
    from etk_distill.adabert.ops import make_op

    x = torch.relu(torch.randn(2, 8, 11))
    for name in OPS:
        assert make_op(name, 8)(x).shape == x.shape, name
    ops = ("conv3", "zero", "max_pool", "zero", "zero", "dil_conv7", "identity", "zero", "avg_pool")
    cell = DerivedCell(8, 3, ops)
    assert sorted(cell.chosen) == ["0_2", "0_3", "0_4", "1_4", "3_4"]
    mask = torch.ones(2, 1, 11)
    mask[0, :, 7:] = 0
    out = cell(x, x, mask)
    assert out.shape == x.shape and out[0, :, 7:].abs().max() == 0  # padding stays zero


# -- end to end ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, minilm_teacher: Path) -> tuple[Path, dict[str, Any], str]:
    """An adabert run of width 128 (the spec's) and K_max 4 (8 in the spec: half the search's time) on 400
    records: a short search, then 100 steps of fine-tuning. β = 0: so short a search with the spec's β = 4
    derives depth 0 (embeddings and max-pooling, which suffice for this data), and the checks below want
    cells in the artifact, its export and its server."""
    out = tmp_path_factory.mktemp("adabert") / "run"
    result = adabert(out, minilm_teacher, "model.max_cells=4", "data.max_rows=400", "algo.search_max_steps=30",
                     "algo.finetune_max_steps=100", "algo.beta=0")
    assert result.exit_code == 0, result.output
    return out, figures(result), result.output


def test_derived_cnn_learns_and_is_much_smaller_and_faster_than_its_teacher(searched) -> None:
    _, result, _ = searched
    assert result["dev_accuracy"] > 0.8, result  # two balanced classes: chance is 0.5
    assert result["teacher_to_student_params"] > 4, result
    assert result["student_params"] < 6_000_000 < result["teacher_params"], result
    assert result["speedup_vs_teacher"] > 1.5, result
    assert 1 <= result["adabert_depth"] <= 4 and result["steps"] == 130


def test_searched_architecture_is_saved_printed_and_rebuilt_from_the_artifact(searched, tmp_path) -> None:
    import etk_core

    run, result, output = searched
    record = json.loads((run / "architecture.json").read_text())
    genotype = record["genotype"]
    assert genotype["depth"] == result["adabert_depth"] and len(genotype["ops"]) == 9
    assert f"adabert architecture: {record['architecture']}" in output
    selection = metrics_log(run, "selection")
    assert len(selection) == 1 and selection[0]["stage"] == "derive" and selection[0]["genotype"] == genotype
    assert [row["stage"] for row in metrics_log(run)][-1] == "finetune"
    config = json.loads((run / "model" / "encoder" / "config.json").read_text())
    assert config["model_type"] == "etk-adabert" and config["genotype"] == genotype
    meta = json.loads((run / "model" / "etk.json").read_text())
    assert meta["backbone"] == "adabert-cnn" and meta["algo"] == "adabert"

    loaded = etk_core.load(run, backend="torch")
    encoder = loaded.model.encoder
    assert type(encoder).__name__ == "DerivedEncoder" and len(encoder.cells) == genotype["depth"]
    assert all(cell.ops == tuple(genotype["ops"]) for cell in encoder.cells)
    assert sum(p.numel() for p in loaded.model.parameters()) == result["student_params"]
    mine = loaded.predict(TEXTS)
    # a fresh process rebuilds it from the artifact alone (transformers learns the config type on import)
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"text": text}) + "\n" for text in TEXTS))
    predicted = tmp_path / "predicted.jsonl"
    done = etk_process(["predict", str(run), "--input", str(inputs), "--output", str(predicted),
                        "--backend", "torch"])
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = [json.loads(line)["prediction"] for line in predicted.read_text().splitlines()]
    assert [row["label"] for row in theirs] == [row["label"] for row in mine]
    for row, reference in zip(theirs, mine, strict=True):
        assert row["probabilities"] == pytest.approx(reference["probabilities"], abs=1e-6)


def test_derived_cnn_exports_to_onnx_and_serves_in_fresh_processes(searched) -> None:
    import httpx

    import etk_core

    run, _, _ = searched
    done = etk_process(["export", str(run)])
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((run / "model" / "onnx.json").read_text())
    assert record["max_abs_diff"] <= 1e-4 and record["bytes"]["model.onnx"] > 0
    torch_rows = etk_core.load(run, backend="torch").predict(TEXTS)
    onnx_rows = etk_core.load(run, backend="onnx").predict(TEXTS)
    assert [row["label"] for row in onnx_rows] == [row["label"] for row in torch_rows]
    with serving(run) as server:
        info = httpx.get(server.url + "/v1/model").json()
        response = httpx.post(server.url + "/v1/predict", json={"inputs": TEXTS})
    assert info["model"] == "adabert-cnn" and info["backend"] == "onnx", info
    assert response.status_code == 200, response.text
    served = response.json()["predictions"]
    assert [row["label"] for row in served] == [row["label"] for row in onnx_rows]
    for row, reference in zip(served, onnx_rows, strict=True):
        assert row["probabilities"] == pytest.approx(reference["probabilities"], abs=1e-5)


def test_a_larger_beta_chooses_a_cheaper_architecture(tmp_path, tiny_teacher) -> None:
    chosen = {}
    for beta in (0.0, 400.0):
        out = tmp_path / f"beta-{beta:g}"
        result = adabert(out, tiny_teacher, *SMALL, "model.max_cells=4", "data.max_rows=96",
                         "algo.search_max_steps=30", "algo.finetune_max_steps=1", "algo.arch_lr=0.05",
                         f"algo.beta={beta}")
        assert result.exit_code == 0, result.output
        chosen[beta] = figures(result)
    cheap, free = chosen[400.0], chosen[0.0]
    assert cheap["adabert_expected_cost"] < free["adabert_expected_cost"], (cheap, free)
    assert cheap["adabert_expected_depth"] < free["adabert_expected_depth"], (cheap, free)
    assert cheap["adabert_cost"] <= free["adabert_cost"], (cheap, free)
    assert cheap["adabert_depth"] <= free["adabert_depth"], (cheap, free)
    assert cheap["adabert_expensive_share"] <= free["adabert_expensive_share"], (cheap, free)


def test_other_backbones_are_refused_in_one_line(tmp_path, tiny_teacher) -> None:
    args = ["train", "--app", "text_classify", "--algo", "adabert", "--model", "bert-tiny", *DATA,
            "--set", f"algo.teacher={tiny_teacher}", "--set", "data.max_rows=16", "--output", str(tmp_path / "r")]
    result = run_cli(args)
    assert result.exit_code == 2, result.output
    assert "--model adabert-cnn" in result.output and not (tmp_path / "r").exists()
    result = run_cli(["train", "--app", "text_classify", "--algo", "adabert", "--model", "adabert-cnn", *DATA,
                      "--set", "data.max_rows=16", "--output", str(tmp_path / "r")])
    assert result.exit_code == 2 and "model.teacher" in result.output, result.output


# -- the contract ----------------------------------------------------------------------------------------

TEACHER: dict[str, Path] = {}


class TestAdaBertContract(AlgorithmContract):
    """On 96 records, search and fine-tuning 12 steps each, checkpoints every 3: checkpoints 1-4 are the
    search's (3, 6, 9, done), `derive` writes a marker, 5-8 are the fine-tuning's."""

    component_name = "adabert"
    kill_after_checkpoints: ClassVar[int] = 5  # fine-tuning step 3: the genotype comes from the checkpoint

    @pytest.fixture(autouse=True)
    def _teacher(self, tiny_teacher: Path) -> None:
        TEACHER["path"] = tiny_teacher

    def train_args(self, output: Path, *extra: str) -> list[str]:
        args = super().train_args(output, *extra)
        args[args.index("--model") + 1] = "adabert-cnn"
        for item in (f"model.teacher={TEACHER['path']}", *SMALL):
            args += ["--set", item]
        return args

    def test_killed_in_the_search_ends_like_the_uninterrupted_run(self, tmp_path: Path,
                                                                 tmp_path_factory: Any) -> None:
        self.kill_after_checkpoints = 2  # search step 6: α, its optimiser and the Gumbel draws resume
        self.test_killed_and_resumed_run_ends_like_the_uninterrupted_one(tmp_path, tmp_path_factory)

    def test_stages_and_architecture_state(self, tmp_path_factory: Any) -> None:
        full, result = self._uninterrupted(tmp_path_factory)
        assert result["steps"] == 24
        assert [row["stage"] for row in metrics_log(full, None) if row["kind"] != "final"][0] == "search"
        stages = json.loads((full / "stages.json").read_text())
        assert list(stages) == ["search", "derive", "finetune"]
        assert stages["derive"]["figures"]["adabert_depth"] == result["adabert_depth"]
        searched = [row for row in metrics_log(full, "train") if row["stage"] == "search"]
        assert searched and {"loss_ce", "loss_kd", "tau", "arch_loss", "efficiency_loss"} <= searched[-1].keys()
        assert searched[-1]["tau"] == pytest.approx(0.2)
        state = torch.load(sorted((full / "checkpoints").glob("finetune-step-*"))[-1] / "algorithm.pt",
                           weights_only=True)
        assert state["genotype"] == json.loads((full / "architecture.json").read_text())["genotype"]
        assert state["edge_logits"].shape == (9, 10) and state["depth_logits"].shape == (3,)
