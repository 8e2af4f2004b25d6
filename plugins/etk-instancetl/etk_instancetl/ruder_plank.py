"""`ruder_plank`: data selection by Bayesian optimisation (Ruder & Plank, EMNLP 2017).

Each source example gets z-normalised similarity (to the target) and diversity features phi(x); a
Gaussian-process optimiser with expected improvement proposes weights w; the top-n source examples by
S(x) = phi(x)·w plus the target train set train a task model whose target-dev metric is the objective.
The trial's task model is a logistic-regression probe on the frozen backbone's representations (seconds per
trial, so the paper's ~100 trials fit in minutes); the final model is the TL module trained on the best
selection and the target train set.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_instancetl.transfer import COMMON_OPTIONS, SELECTION_REPORT_OPTIONS, InstanceTransfer


def pair_text(record: dict[str, Any]) -> str:
    """The words of an example: its text, and its second text for pairs."""
    return " ".join(str(record[key]) for key in ("text", "text_pair") if isinstance(record.get(key), str))


class RuderPlank(InstanceTransfer):
    """Bayesian-optimised similarity/diversity weights choose the top-n source examples; then TL training."""

    name = "ruder_plank"
    description = "Ruder & Plank: Bayesian optimisation of similarity/diversity weights, top-n source + target"
    roles: ClassVar[tuple[str, ...]] = ("target", "source", "dev")
    optional_roles: ClassVar[tuple[str, ...]] = ("test",)
    options: ClassVar[dict[str, Option]] = {
        **COMMON_OPTIONS,
        **SELECTION_REPORT_OPTIONS,
        "trials": Option(int, 50, "Bayesian-optimisation trials (the paper: about 100)", min=1),
        "initial_trials": Option(int, 8, "random trials before the Gaussian process proposes weights",
                                 min=1),
        "select_size": Option((int, type(None)), None, "n, source examples kept (null: the target train size)",
                              min=1),
        "topics": Option(int, 20, "LDA topics of the topic-distribution features", min=1),
        "probe_c": Option(float, 1.0, "inverse L2 strength of the trials' logistic-regression probe",
                          above=0),
    }

    def stages(self, run: Any) -> list[str]:
        return ["select", "train"]

    def stage(self, run: Any, name: str) -> Any:
        if name != "select":
            return super().stage(run, name)
        from etk_core.training import Stage

        self.bind(run)
        return Stage(name="select", run_once=lambda: self.choose(run), artifact=None)

    def choose(self, run: Any) -> dict[str, float]:
        """The Bayesian optimisation over the frozen initial model's representations: the selected source."""
        import numpy as np

        from etk_instancetl.bayes_opt import maximise
        from etk_instancetl.heads import DomainModel
        from etk_instancetl.selection_features import source_features

        opts, app, seed = self.opts, run.app, run.config["seed"]
        source, target = run.records["source"], run.records["target"]
        size = opts["select_size"] or len(target)
        if size < 1:
            raise ConfigError("algo.select_size must be at least 1")
        self.size = min(size, len(source))
        batch_size = run.config["train"]["eval_batch_size"]
        domain_model = DomainModel(run.build_model().to(self.device))
        embed = {role: domain_model.representations(app, run.features(role), batch_size, self.device)
                 for role in ("source", "target", "dev")}
        phi, self.feature_names = source_features([pair_text(r) for r in source], [pair_text(r) for r in target],
                                                  embed["source"], embed["target"], topics=opts["topics"], seed=seed)
        source_labels = np.array([f["label"] for f in run.features("source")])
        target_labels = np.array([f["label"] for f in run.features("target")])
        dev_features = run.features("dev")

        def objective(weights: Any) -> float:
            from sklearn.linear_model import LogisticRegression

            top = np.argsort(-(phi @ weights), kind="stable")[: self.size]
            inputs = np.concatenate([embed["source"][top], embed["target"]])
            labels = np.concatenate([source_labels[top], target_labels])
            probe = LogisticRegression(C=opts["probe_c"], max_iter=300)
            probe.fit(inputs, labels)
            scores = np.full((len(dev_features), len(app.labels)), -1e9)
            scores[:, probe.classes_] = probe.predict_log_proba(embed["dev"])
            return float(app.metrics({"logits": scores}, dev_features)[app.main_metric])

        best, value, history = maximise(objective, phi.shape[1], opts["trials"], seed=seed,
                                        initial=opts["initial_trials"])
        if self.engine.is_main_process:
            with open(run.dir / "metrics.jsonl", "a", encoding="utf-8") as log:
                for trial, (_, trial_value) in enumerate(history, start=1):
                    log.write(json.dumps({"kind": "trial", "stage": "select", "step": 0, "trial": trial,
                                          f"probe_dev_{app.main_metric}": round(trial_value, 5)}) + "\n")
                log.write(json.dumps({"kind": "selection", "stage": "select", "step": 0, "best_trial_value": value,
                                      "weights": dict(zip(self.feature_names, map(float, best)))}) + "\n")
        self.scores = phi @ best
        self.selected = [int(i) for i in np.argsort(-self.scores, kind="stable")[: self.size]]
        self.probe_value = value
        return {"probe_dev_best": value, "source_selected": len(self.selected)}

    def selection_state(self) -> dict[str, Any]:
        import torch

        if not hasattr(self, "selected"):
            return {}
        return {"selected": list(self.selected), "scores": torch.tensor(self.scores, dtype=torch.float64),
                "probe_value": self.probe_value}

    def load_selection_state(self, state: dict[str, Any]) -> None:
        if state:
            self.selected = [int(i) for i in state["selected"]]
            self.scores = state["scores"].numpy()
            self.probe_value = float(state["probe_value"])

    def source_pool(self, run: Any) -> list[int]:
        return self.selected

    def selection_rows(self, run: Any) -> list[dict[str, Any]]:
        import numpy as np

        # a "probability" for the report: the score's rank among all source examples, 1 = best
        ranks = np.empty(len(self.scores))
        ranks[np.argsort(-self.scores, kind="stable")] = np.arange(len(self.scores))
        chosen = set(self.selected)
        return [{"index": index, "probability": round(1.0 - float(ranks[index]) / max(1, len(ranks) - 1), 4),
                 "score": round(float(self.scores[index]), 4), "selected": index in chosen}
                for index in range(len(self.scores))]

    def summary(self, run: Any, results: dict[str, Any]) -> dict[str, float]:
        result = super().summary(run, results)
        result["probe_dev_best"] = self.probe_value
        result["source_selected"] = len(self.selected)
        return result
