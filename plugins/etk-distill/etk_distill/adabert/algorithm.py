"""`adabert`: AdaBERT (Chen et al., IJCAI 2020): search a small CNN student by differentiable architecture
search against a teacher, derive the argmax architecture, fine-tune it with the labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_distill.base import TEACHER_OPTIONS, Distiller, rows

#: The run folder's record of the searched architecture (also in metrics.jsonl and model/encoder/config.json).
ARCHITECTURE_FILE = "architecture.json"
#: The stages, in order.
STAGES = ("search", "derive", "finetune")


class AdaBert(Distiller):
    """AdaBERT with `--model adabert-cnn --set model.teacher=RUN` (the backbone's teacher is the algorithm's).

    Stage `search` trains the supernet (K_max = `model.max_cells` cells over the teacher's projected
    embeddings) and the architecture weights — α_ij ∈ R^10 per edge of the cell (shared by every cell, as
    DARTS's normal cell) and α_N ∈ R^{K_max+1} over the depths 0..K_max — sampled by hard Gumbel-softmax with
    straight-through gradients, τ decaying linearly from `tau_start` (1) to `tau_end` (0.2) over the stage.
    Every batch is a first-order DARTS round:

    - architecture step: on a batch of the held-out part of train (`arch_split`, half by default; 0: the
      model step's own batch), L = Σ_k w_k [(1−γ)·CE_k + γ·L_KD,k] + β·L_E with w the depth sample; its
      gradient goes to α only (computed inside the step, `torch.autograd.grad`, at the current weights), and α
      is an extra trainable module with its own AdamW (`arch_lr`, constant), checkpointed by the engine;
    - model step: one operation per edge sampled without gradient, only those run, and the mean over the
      depths of (1−γ)·CE_k + γ·L_KD,k is the stage's loss, optimised by the engine: every depth's head learns
      at every step, so that the architecture step compares depths whose heads are all trained.

    L_KD, "per-depth heads to teacher layer probes": the supernet has a linear head per depth k; teacher layer
    t(k) = round(k·L_T/K_max) is read through a logistic-regression probe fitted once (L-BFGS, L2 `probe_l2`)
    on the teacher's cached [CLS] states of the training records against their labels (the last layer: the
    teacher's own logits); L_KD,k is the soft cross-entropy (temperature `temperature`) from the probe's to
    head k's probabilities. L_E, the efficiency loss, is the expected op cost E[K]/K_max · mean_edges Σ_o
    softmax(α_ij)_o·cost(o) with the spec's relative costs (conv .100/.104/.108, dilated the same, pools,
    identity and zero .094): at most 0.108, so β = 4 weighs it like the task losses (the mean, not the sum
    over the 9 edges, which would make β·L_E dwarf them).

    Stage `derive` (computed once) takes the argmax architecture (depth and one operation per edge, `zero`
    included), prints it, writes `architecture.json` and a `selection` row to metrics.jsonl. Stage `finetune`
    trains the derived CNN with the labels' cross-entropy, from fresh weights except the embeddings, which
    start again from the teacher's projection (as DARTS retrains the derived network; the supernet's weights
    are discarded). Its best model is the run's `model/`, whose encoder config holds the genotype, so that
    `etk_core.load`, `etk export` and `etk serve` rebuild the derived CNN. Search and fine-tuning have their
    own epochs, step limits and learning rates (null: `train.*`; the defaults suit a CNN trained from scratch).
    """

    name = "adabert"
    description = "AdaBERT: differentiable search of a CNN student (Gumbel-softmax, KD + efficiency), then CE"
    apps: ClassVar[tuple[str, ...]] = ("text_classify", "text_match")
    options: ClassVar[dict[str, Option]] = {
        **TEACHER_OPTIONS,
        "gamma": Option(float, 0.8, "γ, the weight of L_KD (1 − γ: the labels' cross-entropy)", min=0, max=1),
        "beta": Option(float, 4.0, "β, the weight of the efficiency loss L_E (higher: shallower, cheaper)", min=0),
        "temperature": Option(float, 1.0, "T of L_KD's soft cross-entropy", above=0),
        "tau_start": Option(float, 1.0, "Gumbel-softmax temperature at the start of the search", above=0),
        "tau_end": Option(float, 0.2, "Gumbel-softmax temperature at its end (linear decay)", above=0),
        "arch_lr": Option(float, 0.01, "learning rate of the architecture weights (AdamW, constant)", above=0),
        "arch_weight_decay": Option(float, 1e-3, "weight decay of the edge weights α_ij", min=0),
        "arch_split": Option(float, 0.5, "share of train held out for the architecture steps (0: the model "
                             "step's batch)", min=0, below=1),
        "probe_l2": Option(float, 0.01, "L2 penalty of the teacher layer probes", min=0),
        "search_epochs": Option((float, type(None)), None, "epochs of the search (null: train.epochs)", above=0),
        "search_max_steps": Option((int, type(None)), None, "step limit of the search (null: train.max_steps)",
                                   min=1),
        "search_lr": Option((float, type(None)), 1e-3, "learning rate of the supernet (null: train.lr)", above=0),
        "finetune_epochs": Option((float, type(None)), None, "epochs of the fine-tuning (null: train.epochs)",
                                  above=0),
        "finetune_max_steps": Option((int, type(None)), None, "step limit of the fine-tuning (null: "
                                     "train.max_steps)", min=1),
        "finetune_lr": Option((float, type(None)), 1e-3, "learning rate of the derived CNN (null: train.lr)",
                              above=0),
    }

    def __init__(self) -> None:
        self.architecture: Any = None  # the search's Architecture module (this process)
        self.alpha: dict[str, Any] = {}  # its weights as restored from a checkpoint
        self.genotype: Any = None  # the derived architecture
        self.initial_embeddings: dict[str, Any] | None = None
        self.targets: Any = None  # teacher layer log-probabilities [N, layers + 1, labels]

    # -- checks -------------------------------------------------------------------------------------
    def check_run(self, run: Any) -> None:
        from etk_distill.adabert.config import MODEL_TYPE

        config = getattr(run.encoder, "config", None)
        if getattr(config, "model_type", None) != MODEL_TYPE or config.genotype is not None:
            raise ConfigError(f"algorithm 'adabert' searches its own CNN student; --model "
                              f"{run.config['model']['name']} is not it: use --model adabert-cnn "
                              f"--set model.teacher=RUN")
        teachers = {str(Path(path).resolve()) for path in (run.config["algo"].get("teacher"),
                                                           run.config["model"].get("teacher")) if path}
        if len(teachers) > 1:
            raise ConfigError("algo.teacher and model.teacher name different teachers; the student starts from "
                              "its teacher's embeddings: give one (--set model.teacher=RUN)")
        options = run.app.options
        if getattr(run.app, "classic", False) or getattr(run.app, "separate", False):
            raise ConfigError(f"algorithm 'adabert' searches the encoder of a single-sequence classifier; "
                              f"app.model={options.get('model')} is not one: drop --set app.model")
        super().check_run(run)
        if not self.teacher.same_tokenizer(run.tokenizer):
            raise ConfigError("the adabert-cnn student must share its teacher's tokenizer: give the same "
                              "teacher to model.teacher and algo.teacher")
        if self.initial_embeddings is None:  # before any training: the fine-tuning starts from these again
            self.initial_embeddings = {key: value.detach().clone()
                                       for key, value in run.encoder.embeddings.state_dict().items()}

    # -- stages -------------------------------------------------------------------------------------
    def stages(self, run: Any) -> list[str]:
        return list(STAGES)

    def stage(self, run: Any, name: str) -> Any:
        return {"search": self._search, "derive": self._derive, "finetune": self._finetune}[name](run)

    def _search(self, run: Any) -> Any:
        import random

        import torch
        from torch.nn import functional

        from etk_core.training import Stage, Trainable
        from etk_core.training.loop import TrainingLoop
        from etk_distill.adabert.genotype import edges, teacher_layer
        from etk_distill.adabert.probes import layer_targets
        from etk_distill.adabert.supernet import Architecture, SearchModel
        from etk_distill.base import inputs_of
        from etk_distill.losses import soft_cross_entropy

        opts, train_cfg = run.config["algo"], run.config["train"]
        encoder = run.encoder
        max_cells, nodes = encoder.config.max_cells, encoder.config.nodes
        cached = self.cached(run)
        labels = torch.tensor([feature["label"] for feature in run.features("train")], dtype=torch.long)
        if self.targets is None:
            self.targets = layer_targets(cached["cls"], cached["logits"], labels, opts["probe_l2"])
        targets = self.targets
        teacher_layers = targets.shape[1] - 1
        layer_of = [teacher_layer(depth, max_cells, teacher_layers) for depth in range(max_cells + 1)]

        architecture = Architecture(len(edges(nodes)), max_cells)
        self.architecture = architecture
        encoder.attach(architecture)
        model = SearchModel(encoder, len(run.app.labels), run.app.options.get("pooling", "cls"),
                            float(run.app.options.get("dropout", 0.1)))
        if train_cfg["precision"] == "fp64":
            model, architecture = model.double(), architecture.double()

        indices = list(range(len(run.features("train"))))
        held = int(len(indices) * opts["arch_split"])
        if opts["arch_split"] and not 0 < held < len(indices):
            raise ConfigError(f"algo.arch_split={opts['arch_split']} leaves no training records on one side of "
                              f"{len(indices)}; use more data or --set algo.arch_split=0")
        random.Random(run.config["seed"]).shuffle(indices)
        streams = {"train": run.stream("train", pool=sorted(indices[held:]))}
        if held:
            streams["arch"] = run.stream("train", pool=sorted(indices[:held]), seed_offset=1)
        gamma, beta = opts["gamma"], opts["beta"]
        schedule = {"total": 1}
        depths = list(range(max_cells + 1))
        log_every = train_cfg["log_every"]

        def task_loss(logits: Any, batch: Any, depth: int, device: Any) -> Any:
            teacher = rows(targets[:, layer_of[depth]], batch.indices, device)
            return ((1.0 - gamma) * functional.cross_entropy(logits.float(), batch.tensors["labels"])
                    + gamma * soft_cross_entropy(logits, teacher, opts["temperature"]))

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            net = getattr(context.model, "module", context.model)
            arch = context.modules["architecture"]
            progress = min(1.0, context.step / max(1, schedule["total"] - 1))
            tau = opts["tau_start"] + (opts["tau_end"] - opts["tau_start"]) * progress
            # architecture step (first-order DARTS): ∂L/∂α at the current weights, on the held-out batch
            held_out = batches.get("arch", batches["train"])
            depth_weights, op_weights = arch.sample(tau)
            logits = net.depth_logits(inputs_of(held_out.tensors), op_weights, depths)
            per_depth = torch.stack([task_loss(logits[k], held_out, k, context.device) for k in depths])
            efficiency = arch.expected_cost()
            arch_loss = (depth_weights * per_depth).sum() + beta * efficiency
            parameters = list(arch.parameters())
            grads = torch.autograd.grad(arch_loss / train_cfg["grad_accum"], parameters)
            for parameter, grad in zip(parameters, grads, strict=True):
                parameter.grad = grad if parameter.grad is None else parameter.grad + grad
            # model step: the cells run one sampled operation per edge; every depth's head learns on it
            with torch.no_grad():
                _, op_sample = arch.sample(tau)
            batch = batches["train"]
            outs = net.depth_logits(inputs_of(batch.tensors), op_sample, depths)
            ce = torch.stack([functional.cross_entropy(outs[k].float(), batch.tensors["labels"]) for k in depths])
            kd = torch.stack([soft_cross_entropy(outs[k], rows(targets[:, layer_of[k]], batch.indices,
                                                                context.device), opts["temperature"])
                              for k in depths])
            if log_every and ((context.step + 1) % log_every == 0 or context.step + 1 == schedule["total"]):
                context.log(tau=tau, arch_loss=arch_loss, efficiency_loss=efficiency,
                            expected_depth=arch.expected_depth(), sampled_depth=int(depth_weights.argmax()))
            return {"ce": ce.mean(), "kd": kd.mean()}

        stage = Stage(name="search", model=model, streams=streams, step=step,
                      loss_weights={"ce": 1.0 - gamma, "kd": gamma},
                      modules={"architecture": Trainable(architecture, lr=opts["arch_lr"],
                                                         weight_decay=opts["arch_weight_decay"],
                                                         schedule="constant")},
                      epochs=opts["search_epochs"], max_steps=opts["search_max_steps"], lr=opts["search_lr"],
                      dev=run.dev(), artifact=None)
        # the τ schedule spans the stage's steps as the engine plans them
        schedule["total"] = TrainingLoop(stage=stage, app=run.app, config=run.config, engine=run.engine(),
                                         run_dir=None).plan()[1]
        return stage

    def _alpha_now(self) -> dict[str, Any]:
        if self.architecture is not None:
            return {key: value.detach().float().cpu().clone() for key, value in
                    self.architecture.state_dict().items()}
        return dict(self.alpha)

    def _derive(self, run: Any) -> Any:
        from etk_core.training import Stage

        def derive() -> dict[str, float]:
            from etk_distill.adabert.genotype import edges
            from etk_distill.adabert.supernet import Architecture

            config = run.encoder.config
            alpha = self._alpha_now()
            architecture = Architecture(len(edges(config.nodes)), config.max_cells)
            architecture.load_state_dict(alpha)
            self.genotype = architecture.genotype()
            figures = self.architecture_figures(config.max_cells, config.nodes)
            figures.update({"adabert_expected_cost": round(float(architecture.expected_cost().detach()), 6),
                            "adabert_expected_depth": round(float(architecture.expected_depth().detach()), 4)})
            if run.engine().is_main_process:
                record = {**figures, "genotype": self.genotype.as_dict(),
                          "architecture": self.genotype.describe(config.nodes),
                          "edge_logits": alpha["edge_logits"].tolist(),
                          "depth_logits": alpha["depth_logits"].tolist()}
                (run.dir / ARCHITECTURE_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
                with open(run.dir / "metrics.jsonl", "a", encoding="utf-8") as log:
                    log.write(json.dumps({"kind": "selection", "stage": "derive", "step": 0, **record}) + "\n")
                if run.reporter is not None:
                    run.reporter.notice(f"adabert architecture: {record['architecture']}")
            return figures

        return Stage(name="derive", run_once=derive, artifact=None)

    def architecture_figures(self, max_cells: int, nodes: int) -> dict[str, float]:
        """The derived architecture's depth, cost (its L_E) and share of convolution edges."""
        return {"adabert_depth": self.genotype.depth, "adabert_cost": round(self.genotype.cost(max_cells), 6),
                "adabert_expensive_share": round(self.genotype.expensive_share(), 4)}

    def _finetune(self, run: Any) -> Any:
        import copy

        from etk_core.training import Stage
        from etk_distill.adabert.encoder import DerivedEncoder

        opts = run.config["algo"]
        config = copy.deepcopy(run.encoder.config)
        config.genotype = self.genotype.as_dict()
        derived = DerivedEncoder(config)
        derived.embeddings.load_state_dict(self.initial_embeddings)
        run.encoder = derived  # the run's artifact records this encoder's config: the genotype
        return Stage(name="finetune", model=run.build_model(), streams={"train": run.stream("train")},
                     epochs=opts["finetune_epochs"], max_steps=opts["finetune_max_steps"], lr=opts["finetune_lr"],
                     dev=run.dev())

    # -- state and figures ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = dict(self._alpha_now())
        if self.genotype is not None:
            state["genotype"] = self.genotype.as_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from etk_distill.adabert.genotype import Genotype

        self.alpha = {key: state[key] for key in ("edge_logits", "depth_logits") if key in state}
        if "genotype" in state:
            genotype = state["genotype"]
            self.genotype = Genotype(int(genotype["depth"]), tuple(genotype["ops"]))

    def summary(self, run: Any, results: dict[str, Any]) -> dict[str, float]:
        figures = super().summary(run, results)
        derive = results.get("derive")
        figures.update(derive.figures if derive is not None and derive.figures else
                       self.architecture_figures(run.encoder.config.max_cells, run.encoder.config.nodes))
        return figures
