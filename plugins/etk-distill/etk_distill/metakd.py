"""`metakd`: Meta Knowledge Distillation (Pan et al., ACL 2021): a meta-teacher trained on all domains with
prototype-weighted examples and a domain-corruption loss, then distilled into a student for a target domain
with per-example weights (intermediate layers and a domain branch), then on the meta-teacher's logits."""

from __future__ import annotations

from typing import Any, ClassVar

from etk_core.config import Option
from etk_core.errors import ConfigError, EtkError
from etk_distill.base import TEACHER_OPTIONS, Distiller, attention_mask, inputs_of, rows

#: The run folder's artifact of the meta-teacher (the plain app model, loadable as any teacher), and the file
#: in it that holds the meta-teacher's domain branch (E_dom, W_c, W_d), which the artifact's model lacks.
META_TEACHER_ARTIFACT = "meta_teacher"
BRANCH_FILE = "domain_branch.safetensors"
#: The run folder's artifact of the student after meta-distillation stage 1 (stage 2 starts from it).
DISTILL_ARTIFACT = "distill"
STAGES = ("prototypes", "meta_teacher", "distill", "prediction")


class MetaKd(Distiller):
    """Meta-KD in four stages (`prototypes`, `meta_teacher`, `distill`, `prediction`).

    - `prototypes` (computed once): e_i, the teacher's last-layer [CLS] state of train example i (the cached
      teacher outputs); c_k the mean e of domain k; s_i = ½[cos(e_i, c_{k_i}) + cos(e_i, mean_{k'≠k_i} c_k')]
      (the spec's score, in [−1, 1]). [choice] The cosines of a PLM's states can be negative, so the score used
      is t_i = (1 + s_i)/2 ∈ [0, 1] (an affine map: the ranking of the examples is the spec's); the other
      domains' prototypes are averaged unweighted. The scores are kept in the algorithm's state (every
      checkpoint; `--resume` restores them).
    - `meta_teacher`: the teacher (`algo.teacher`, a teacher trained on the mixed domains) rebuilt from its
      artifact and trained on all of `train` with L = mean_i t_i·[CE(y_i) + γ·CE(W_d u_i, d̃_i)], d̃ a random
      permutation of the batch's domain ids (domain corruption, γ = `gamma`) and the domain branch
      u_i = tanh(W_c(E_dom[d_i] + h̄_i)), h̄_i the mean of the last layer's states over the real tokens.
      [choice] The batches mix the domains (no one-domain batches: a permutation of one domain's ids would
      change nothing); the domain classifier W_d reads u. The branch is an extra module. The meta-teacher is
      selected on all of `dev` (per-domain dev metrics as `<domain>/<metric>`) and written as the artifact
      folder `meta_teacher` (the plain app model with the teacher's tokenizer and the run's
      `train.max_length`, on which it was trained) with its branch in `meta_teacher/domain_branch.safetensors`.
    - `distill` (meta-distillation stage 1) on the train examples of `algo.target_domain` (null: all domains):
      w_i = (1 + t_i)/(1 + exp((p_T(y_i|x_i) − 1)²)), p_T the meta-teacher's probability of the gold label;
      L = mean_i w_i·[Σ_l MSE(A_s^l, A_t^{g(l)}) + Σ_l MSE(W_fit^l H_s^l, H_t^{g(l)}) + γ·MSE(u_s, u_t)],
      g(m) = m·L_T/L_S (TinyBERT's map, `uniform_layers`). [choice] The hidden-state sum runs over m = 0..L_S
      (m = 0: the embeddings, as TinyBERT's L_embd), the attention sum over m = 1..L_S, on pre-softmax scores
      (`internals.capture`) over the pairs of real tokens, mean over heads (head-averaged maps when the
      head counts differ); each MSE is taken per example over its real tokens, then weighted by w_i and
      averaged over the batch (`metakd_parts`; the same values as `losses.masked_mse`/`attention_loss` for
      one example). W_fit is always learnt (spec), one per matched state, identity-initialised where the
      widths agree. u_s = tanh(W_c^s(E_dom^s[d_i] + h̄_s)) is the student's own branch, W_c^s mapping to the
      teacher's width; u_t comes from the frozen meta-teacher's branch. The losses are logged as
      `loss_attention`, `loss_hidden`, `loss_domain` (the last weighted by γ in the optimised sum). As in
      TinyBERT the stage has no dev evaluation (it does not train the head) and its artifact `distill` is the
      student at its last step.
    - `prediction` (stage 2) on the same examples: softCE(z_s/T, z_t/T), T = `temperature`, z_t the
      meta-teacher's logits (cached like any teacher's, under the run's `cache/meta_teacher`), selected on the
      target domain's dev examples (all of dev, with per-domain metrics, when `target_domain` is null or the
      dev records carry no domain). Its artifact is the run's `model/`: the plain student app model (no
      domain branch).

    The branches and W_fit are extra modules (outside the artifacts), at `module_lr` (null: their stage's
    learning rate). [choice] `dev` is required: the meta-teacher is the teacher's model, not the run's, so the
    stage writes its artifact itself on each new best dev metric (the engine's artifact writer knows only the
    student's backbone), and without dev there would be no evaluation to write it at.
    The final figures add `teacher_dev_<metric>` and `meta_teacher_dev_<metric>` (overall and per domain) to
    compare the meta-teacher with the mixed teacher it started from, besides the size and speed figures of
    every distiller. The student must read the teacher's tokens and have a transformer
    (`--model student-of-teacher`, or a transformer with the teacher's vocabulary)."""

    name = "metakd"
    description = ("Meta-KD: prototype-weighted meta-teacher over all domains with domain corruption, then "
                   "per-domain meta-distillation (attention, states, domain branch) and prediction layer")
    roles: ClassVar[tuple[str, ...]] = ("train", "dev")
    optional_roles: ClassVar[tuple[str, ...]] = ("test",)
    layer_losses = True
    options: ClassVar[dict[str, Option]] = {
        **TEACHER_OPTIONS,
        "target_domain": Option((str, type(None)), None, "the domain the student is distilled for: the distill "
                                "and prediction stages train on its train examples and select on its dev "
                                "examples (null: all domains)"),
        "gamma": Option(float, 0.5, "γ: weight of the meta-teacher's domain-corruption loss and of the distill "
                        "stage's MSE(u_s, u_t)", min=0),
        "temperature": Option(float, 2.0, "T of the prediction stage's soft cross-entropy", above=0),
        "meta_epochs": Option((float, type(None)), None, "epochs of the meta-teacher stage (null: train.epochs)",
                              above=0),
        "meta_lr": Option((float, type(None)), None, "learning rate of the meta-teacher (null: train.lr)", above=0),
        "distill_epochs": Option((float, type(None)), None, "epochs of the distill stage (null: train.epochs)",
                                 above=0),
        "distill_lr": Option((float, type(None)), None, "learning rate of the distill stage (null: train.lr)",
                             above=0),
        "module_lr": Option((float, type(None)), None, "learning rate of the domain branches and W_fit (null: "
                            "their stage's)", above=0),
    }

    domains: tuple[str, ...] = ()  # the train data's domains, sorted (domain id = position)
    scores: Any = None  # t_i per train feature (a float tensor), from the `prototypes` stage
    meta_best: float | None = None  # the meta-teacher's best dev metric so far

    # -- checks and state ---------------------------------------------------------------------------------
    def check_run(self, run: Any) -> None:
        groups = run.groups("train")
        if groups is None:
            raise ConfigError("algorithm 'metakd' needs the domain of every train record (one feature per "
                              "record): give data with a domain column (data.domain names it), e.g. --data "
                              "train=amazon:train")
        domains = sorted({str(group) for group in groups})
        if len(domains) < 2:
            raise ConfigError(f"algorithm 'metakd' learns across domains; the train data has only "
                              f"{domains[0]!r}: give records of at least 2 domains")
        target = run.config["algo"]["target_domain"]
        if target is not None and str(target) not in domains:
            raise ConfigError(f"algo.target_domain={target!r} is not a domain of the train data "
                              f"({', '.join(domains)})")
        dev_groups = run.groups("dev")
        if target is not None and dev_groups is not None and str(target) not in {str(g) for g in dev_groups}:
            raise ConfigError(f"algo.target_domain={target!r} has no dev records; give dev data of that domain")
        self.domains = tuple(domains)
        super().check_run(run)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"meta_best": self.meta_best}
        if self.scores is not None:
            state["scores"] = self.scores
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.meta_best = state.get("meta_best")
        self.scores = state.get("scores")

    def stages(self, run: Any) -> list[str]:
        return list(STAGES)

    def stage(self, run: Any, name: str) -> Any:
        if name == "prototypes":
            return self._prototypes(run)
        if self.scores is None:
            raise EtkError(f"metakd stage {name!r} needs the prototype scores, which the checkpoint does not "
                           f"hold; start the run again without --resume")
        return {"meta_teacher": self._meta_teacher, "distill": self._distill,
                "prediction": self._prediction}[name](run)

    # -- helpers ------------------------------------------------------------------------------------------
    def _domain_ids(self, run: Any) -> Any:
        """The domain index (into `self.domains`) of every train feature."""
        import torch

        index = {domain: k for k, domain in enumerate(self.domains)}
        return torch.tensor([index[str(group)] for group in run.groups("train")], dtype=torch.long)

    def _pool(self, run: Any) -> list[int] | None:
        """The train features of the target domain (None: all of them)."""
        target = run.config["algo"]["target_domain"]
        if target is None:
            return None
        return [i for i, group in enumerate(run.groups("train")) if str(group) == str(target)]

    def _dev(self, run: Any) -> tuple[list[dict[str, Any]], list[Any] | None]:
        """Dev features and their domains for the student's stages: the target domain's alone, if set."""
        features, groups = run.dev(), run.groups("dev")
        target = run.config["algo"]["target_domain"]
        if target is None or groups is None:
            return features, groups
        return [feature for feature, group in zip(features, groups) if str(group) == str(target)], None

    def _module_lr(self, run: Any, stage_lr: float | None) -> float:
        return run.config["algo"]["module_lr"] or stage_lr or run.config["train"]["lr"]

    @staticmethod
    def _like(run: Any, module: Any) -> Any:
        return module.double() if run.config["train"]["precision"] == "fp64" else module

    # -- stages -------------------------------------------------------------------------------------------
    def _prototypes(self, run: Any) -> Any:
        from etk_core.training import Stage

        def compute() -> dict[str, float]:
            from etk_distill.metakd_parts import prototype_scores

            embeddings = self.cached(run)["cls"][:, -1]  # the teacher's last-layer [CLS] states
            ids = self._domain_ids(run)
            self.scores = prototype_scores(embeddings, ids, len(self.domains)).contiguous()
            figures = {"score_mean": float(self.scores.mean()), "score_min": float(self.scores.min()),
                       "score_max": float(self.scores.max())}
            for k, domain in enumerate(self.domains):
                figures[f"{domain}/score_mean"] = float(self.scores[ids == k].mean())
            return figures

        return Stage(name="prototypes", run_once=compute)

    def _meta_teacher(self, run: Any) -> Any:
        from torch.nn import functional

        from etk_core.artifact import load_artifact
        from etk_core.training import Stage, Trainable
        from etk_distill.internals import capture, encoder_of
        from etk_distill.metakd_parts import DomainBranch, corrupt_domains, masked_mean

        opts = run.config["algo"]
        model = self._like(run, load_artifact(self.teacher.path).model)  # a trainable copy of the teacher
        width = encoder_of(model).config.hidden_size
        branch = self._like(run, DomainBranch(len(self.domains), width, width, classify=True))
        ids, scores, main = self._domain_ids(run), self.scores, run.app.main_metric

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            batch = batches["train"]
            tensors = batch.tensors
            with capture(context.model) as seen:
                out = context.model(**inputs_of(tensors))
            domains = rows(ids, batch.indices, context.device)
            weights = rows(scores, batch.indices, context.device)
            u = context.modules["branch"](masked_mean(seen.hidden[-1], attention_mask(tensors)), domains)
            task = functional.cross_entropy(out["logits"].float(), tensors["labels"], reduction="none")
            corrupted = functional.cross_entropy(context.modules["branch"].logits(u).float(),
                                                 corrupt_domains(domains), reduction="none")
            context.log(score_mean=weights.mean())
            return {"task": (weights * task).mean(), "domain": (weights * corrupted).mean()}

        def on_eval_end(context: Any, metrics: dict[str, float]) -> None:
            value = metrics.get(main)
            if value is None or (self.meta_best is not None and value <= self.meta_best):
                return
            self.meta_best = float(value)
            engine = run.engine()
            if engine.is_main_process:
                self._save_meta_teacher(run, engine.full_model(), context.modules["branch"], metrics)

        lr = opts["meta_lr"]
        return Stage(name="meta_teacher", model=model, streams={"train": run.stream("train")}, step=step,
                     modules={"branch": Trainable(branch, lr=self._module_lr(run, lr))},
                     loss_weights={"domain": opts["gamma"]}, epochs=opts["meta_epochs"], lr=lr, dev=run.dev(),
                     dev_groups=run.groups("dev"), artifact=None, on_eval_end=on_eval_end)

    def _save_meta_teacher(self, run: Any, model: Any, branch: Any, metrics: dict[str, float]) -> None:
        """Write the meta-teacher artifact (the teacher's app, tokenizer and backbone; the run's max_length),
        then its domain branch into it."""
        from etk_core.artifact import save_artifact
        from etk_core.io import atomic_write, save_tensors
        from etk_distill.internals import encoder_of

        meta = self.teacher.predictor.meta
        config = {"app": meta["app"], "model": meta["model"], "algo": {"name": self.name},
                  "train": {"max_length": run.config["train"]["max_length"]}}
        folder = run.dir / META_TEACHER_ARTIFACT
        save_artifact(folder, model=model, app=self.teacher.app, tokenizer=self.teacher.app.tokenizer,
                      encoder_config=encoder_of(model).config, config=config, metrics=metrics)
        tensors = {key: value.detach().contiguous().cpu() for key, value in branch.state_dict().items()}
        atomic_write(folder / BRANCH_FILE, lambda tmp: save_tensors(tensors, tmp))

    def _load_meta_teacher(self, run: Any) -> tuple[Any, Any]:
        """The meta-teacher's app model and domain branch, as the `meta_teacher` stage wrote them."""
        from safetensors.torch import load_file

        from etk_core.artifact import load_artifact
        from etk_distill.internals import encoder_of
        from etk_distill.metakd_parts import DomainBranch

        folder = run.dir / META_TEACHER_ARTIFACT
        model = load_artifact(folder).model
        width = encoder_of(model).config.hidden_size
        branch = DomainBranch(len(self.domains), width, width, classify=True)
        branch.load_state_dict(load_file(str(folder / BRANCH_FILE)))
        return self._like(run, model), self._like(run, branch)

    def _distill(self, run: Any) -> Any:
        import torch

        from etk_core.training import Stage, Trainable
        from etk_distill.internals import capture, encoder_of, layer_count
        from etk_distill.layer_maps import uniform_layers
        from etk_distill.metakd_parts import (
            DomainBranch,
            example_attention_mse,
            example_mse,
            example_weights,
            fit_projections,
            masked_mean,
        )

        opts = run.config["algo"]
        model = run.build_model()
        meta_teacher, meta_branch = self._load_meta_teacher(run)
        widths = (encoder_of(model).config.hidden_size, encoder_of(meta_teacher).config.hidden_size)
        mapped = uniform_layers(layer_count(meta_teacher), layer_count(model))
        fit = self._like(run, fit_projections(*widths, len(mapped)))
        branch = self._like(run, DomainBranch(len(self.domains), *widths))
        ids, scores = self._domain_ids(run), self.scores
        lr = self._module_lr(run, opts["distill_lr"])

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            batch = batches["train"]
            tensors, inputs = batch.tensors, inputs_of(batch.tensors)
            mask = attention_mask(tensors)
            domains = rows(ids, batch.indices, context.device)
            with torch.no_grad(), capture(context.frozen["meta_teacher"], attention=True) as taught:
                logits = context.frozen["meta_teacher"](**inputs)["logits"].float()
                u_t = context.frozen["meta_branch"](masked_mean(taught.hidden[-1], mask), domains)
            with capture(context.model, attention=True) as seen:
                context.model(**inputs)
            gold = logits.softmax(-1).gather(1, tensors["labels"].unsqueeze(1)).squeeze(1)
            weights = example_weights(rows(scores, batch.indices, context.device), gold)
            project = context.modules["fit"]
            hidden = sum(example_mse(project[m](seen.hidden[m]), taught.hidden[mapped[m]], mask)
                         for m in range(len(mapped)))
            attention = sum(example_attention_mse(seen.scores[m - 1], taught.scores[mapped[m] - 1], mask)
                            for m in range(1, len(mapped)))
            u_s = context.modules["branch"](masked_mean(seen.hidden[-1], mask), domains)
            domain = (u_s.float() - u_t.float()).pow(2).mean(-1)
            context.log(weight_mean=weights.mean())
            return {"attention": (weights * attention).mean(), "hidden": (weights * hidden).mean(),
                    "domain": (weights * domain).mean()}

        # no dev: the student's head is not trained here; the artifact is the stage's last student
        return Stage(name="distill", model=model, streams={"train": run.stream("train", pool=self._pool(run))},
                     step=step, modules={"fit": Trainable(fit, lr=lr), "branch": Trainable(branch, lr=lr)},
                     frozen={"meta_teacher": meta_teacher, "meta_branch": meta_branch},
                     loss_weights={"domain": opts["gamma"]}, epochs=opts["distill_epochs"], lr=opts["distill_lr"],
                     artifact=DISTILL_ARTIFACT)

    def _prediction(self, run: Any) -> Any:
        from safetensors.torch import load_file

        from etk_core.training import Stage
        from etk_distill.losses import soft_cross_entropy
        from etk_distill.teacher import Teacher

        opts = run.config["algo"]
        model = run.build_model()
        model.load_state_dict(load_file(str(run.dir / DISTILL_ARTIFACT / "model.safetensors")))
        meta_teacher = Teacher(str(run.dir / META_TEACHER_ARTIFACT), run)
        logits = meta_teacher.outputs(run, "train", run.config["train"]["eval_batch_size"],
                                      run.cache_dir / META_TEACHER_ARTIFACT)["logits"]

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            batch = batches["train"]
            out = context.model(**inputs_of(batch.tensors))
            return {"soft": soft_cross_entropy(out["logits"], rows(logits, batch.indices, context.device),
                                               opts["temperature"])}

        dev, dev_groups = self._dev(run)
        return Stage(name="prediction", model=model, streams={"train": run.stream("train", pool=self._pool(run))},
                     step=step, dev=dev, dev_groups=dev_groups)

    # -- final figures ------------------------------------------------------------------------------------
    def summary(self, run: Any, results: dict[str, Any]) -> dict[str, float]:
        from etk_core.predict import evaluate_features

        figures = super().summary(run, results)
        main = run.app.main_metric

        def main_metrics(metrics: dict[str, float]) -> dict[str, float]:
            return {key: value for key, value in metrics.items() if key == main or key.endswith(f"/{main}")}

        meta = results.get("meta_teacher")
        if meta is not None and meta.best_metrics:
            figures.update({f"meta_teacher_dev_{key}": value for key, value in main_metrics(meta.best_metrics).items()})
        if run.engine().is_main_process:
            app = self.teacher.app
            features = app.encode_all(run.records["dev"])
            teacher = evaluate_features(self.teacher.model, app, features, run.config["train"]["eval_batch_size"])
            groups = run.groups("dev")
            for domain in sorted({str(group) for group in groups or []}):
                part = [feature for feature, group in zip(features, groups) if str(group) == domain]
                value = evaluate_features(self.teacher.model, app, part, run.config["train"]["eval_batch_size"])
                teacher[f"{domain}/{main}"] = value[main]
            figures.update({f"teacher_dev_{key}": value for key, value in main_metrics(teacher).items()})
        return figures
