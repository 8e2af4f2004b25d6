"""Parts of the engine's step contract: a frozen module stays frozen and out of the artifact and checkpoints,
an extra module gets its own optimiser and schedule, hooks run at step, evaluation and epoch ends, named
losses are weighted and logged, a stream's pool restricts what it draws."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file

from etk_core.config import resolve
from etk_core.run import prepare, start
from etk_core.testing import metrics_log, needs_packaged_minilm
from etk_core.training import Stage, Trainable
from etk_core.training.loop import TrainingLoop

pytestmark = needs_packaged_minilm()


@pytest.fixture
def run(tmp_path):
    config = resolve(flags={"model.name": "bert-tiny", "output": str(tmp_path / "run"),
                            "data.sources": {"train": "synthetic_sentiment:train", "dev": "synthetic_sentiment:dev"}},
                     sets=["train.batch_size=8", "train.max_length=32", "data.max_rows=48", "train.threads=1",
                           "train.epochs=2", "train.log_every=1", "train.lr=1e-3"])
    prepared = prepare(config)
    start(prepared)
    return prepared


def test_frozen_teacher_extra_module_hooks_and_weighted_losses(run):
    model = run.build_model()
    teacher = copy.deepcopy(model)
    before = {key: value.clone() for key, value in teacher.state_dict().items()}
    scale = torch.nn.Linear(1, 1)  # an extra module: learns a temperature-like scale of the teacher's logits
    seen: dict[str, list] = {"teacher_training": [], "epochs": [], "evals": [], "pool": set()}

    def step(context, batches):
        batch = batches["train"]
        seen["teacher_training"].append(context.frozen["teacher"].training)
        seen["pool"].update(batch.indices)
        with torch.no_grad():
            soft = context.frozen["teacher"](**batch.tensors)["logits"]
        outputs = context.model(**batch.tensors)
        scaled = context.modules["scale"](soft.unsqueeze(-1)).squeeze(-1)
        distill = torch.nn.functional.mse_loss(outputs["logits"], scaled)
        context.log(scale=context.modules["scale"].weight)
        return {"task": outputs["loss"], "distill": distill}

    def on_epoch_end(context, epoch):
        seen["epochs"].append(epoch)
        return {"epoch_hook": float(epoch)}

    def on_eval_end(context, metrics):
        seen["evals"].append(context.step)
        return {"eval_hook": metrics["accuracy"]}

    pool = list(range(0, 48, 2))
    stage = Stage(model=model, streams={"train": run.stream("train", pool=pool)}, step=step,
                  loss_weights={"distill": 0.5}, modules={"scale": Trainable(scale, lr=0.1, schedule="constant")},
                  frozen={"teacher": teacher}, dev=run.dev(), on_epoch_end=on_epoch_end, on_eval_end=on_eval_end,
                  on_step_end=lambda context: {"step_hook": context.step})
    loop = TrainingLoop(stage=stage, app=run.app, config=run.config, engine=run.engine(), run_dir=run.dir,
                        on_best=lambda best, metrics: run.save_artifact(best, metrics))
    result = loop.fit()
    assert result.steps == 6  # 24 pooled examples / 8 per batch x 2 epochs
    assert seen["pool"] == set(pool)
    assert seen["teacher_training"] and not any(seen["teacher_training"])
    assert all(torch.equal(value, before[key]) for key, value in teacher.state_dict().items())
    assert not any(param.requires_grad for param in teacher.parameters())
    assert seen["epochs"] == [1, 2] and seen["evals"] == [3, 6]
    rows = metrics_log(run.dir, "train")
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    for row in rows:  # loss = task + 0.5 * distill, each named loss logged unweighted
        assert row["loss"] == pytest.approx(row["loss_task"] + 0.5 * row["loss_distill"], rel=1e-5)
        assert row["lr_scale"] == 0.1 and row["step_hook"] == row["step"]
    assert rows[0]["scale"] != rows[-1]["scale"]  # the extra module learnt
    assert [row["epoch_hook"] for row in rows if "epoch_hook" in row] == [1.0, 2.0]
    assert all("eval_hook" in row for row in metrics_log(run.dir))
    saved = load_file(str(run.dir / "model" / "model.safetensors"))
    assert saved.keys() == model.state_dict().keys()  # the artifact: the model alone
    checkpoint = next((run.dir / "checkpoints").glob("step-*"))
    stored = load_file(str(checkpoint / "model.safetensors"))
    assert {key for key in stored if key.startswith("__module__.")} == {"__module__.scale.weight",
                                                                         "__module__.scale.bias"}
    assert not any("teacher" in key for key in stored)
