"""The teacher: a trained etk model of the student's app, its outputs computed once per data role and kept
in the run's cache (keyed by the teacher's weights and the data), and its internals for layer losses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from etk_core.errors import ConfigError, EtkError

#: The teacher's outputs kept per data role: logits [N, labels] and each layer's [CLS] state
#: [N, layers + 1, width] (token-level states and attention scores are computed per batch instead: kept for
#: a whole training set they take N·layers·tokens·width floats, gigabytes for a few thousand examples).
CACHED = ("logits", "cls")


def teacher_path(run: Any) -> str:
    """Where the run's teacher is: `algo.teacher`, else the student backbone's `model.teacher`."""
    path = run.config["algo"].get("teacher") or run.config["model"].get("teacher")
    if not path:
        raise ConfigError(f"algorithm {run.config['algo']['name']!r} needs a teacher: --set algo.teacher=RUN "
                          f"(a run folder or model artifact of --app {run.config['app']['name']})")
    return str(path)


def backbone_teacher(path: str | None, model: str) -> Any:
    """The teacher a student backbone (`--model MODEL`) is made from, loaded for PyTorch; a one-line
    ConfigError without `model.teacher`."""
    import etk_core

    if not path:
        raise ConfigError(f"--model {model} needs its teacher: --set model.teacher=RUN (a run folder or model "
                          f"artifact of the app)")
    return etk_core.load(path, backend="torch")


class Teacher:
    """A loaded teacher checked against the run (same app, same labels in the same order)."""

    def __init__(self, path: str, run: Any) -> None:
        import etk_core

        if not Path(path).exists():
            raise ConfigError(f"teacher {path} does not exist; give the run folder (or model/ folder) of a "
                              f"finished `etk train`")
        self.predictor = etk_core.load(path, backend="torch")
        self.model, self.app, self.path = self.predictor.model, self.predictor.app, self.predictor.path
        app = self.predictor.meta["app"]["name"]
        if app != run.config["app"]["name"]:
            raise ConfigError(f"teacher {path} was trained with --app {app}; this run is --app "
                              f"{run.config['app']['name']}: train a teacher of the same app")
        if list(self.app.labels or []) != list(run.app.labels or []):
            raise ConfigError(f"teacher {path} has labels {_short(self.app.labels)}; the training data has "
                              f"{_short(run.app.labels)}: train the teacher on data with the same label set")
        digests = self.predictor.meta.get("files") or {}
        self.digest = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()

    def same_tokenizer(self, tokenizer: Any) -> bool:
        """Whether the student's tokenizer splits text into the teacher's tokens (layer losses need that)."""
        return tokenizer.get_vocab() == self.app.tokenizer.get_vocab()

    def params(self) -> int:
        """The teacher's parameter count."""
        return sum(p.numel() for p in self.model.parameters())

    def outputs(self, run: Any, role: str, batch_size: int, folder: Path) -> dict[str, Any]:
        """The teacher's logits and [CLS] states for every record of `role` (in the role's feature order),
        from the cache `folder` when they are there, else computed now and cached."""
        from safetensors.torch import load_file

        from etk_core.io import atomic_write, save_tensors

        records = run.records[role]
        file = folder / f"{role}-{self._key(records)}.safetensors"
        if file.is_file():
            try:
                return load_file(str(file))
            except Exception:  # a cut cache file is recomputed, never trusted  # noqa: BLE001
                pass
        if len(run.features(role)) != len(records):
            raise EtkError(f"algorithm {run.config['algo']['name']!r} needs one feature per record of {role!r}; "
                           f"this app split some records in several")
        outputs = self.compute(records, batch_size)
        atomic_write(file, lambda tmp: save_tensors(outputs, tmp))
        return outputs

    def compute(self, records: list[dict[str, Any]], batch_size: int) -> dict[str, Any]:
        """Run the teacher over `records` (encoded with its own tokenizer), in batches of similar length."""
        import torch

        from etk_distill.internals import capture

        features = self.app.encode_all(records, with_label=False)
        order = sorted(range(len(features)), key=lambda i: self.app.length(features[i]))
        logits: list[Any] = [None] * len(features)
        cls: list[Any] = [None] * len(features)
        self.model.eval()
        with torch.no_grad(), capture(self.model) as seen:
            for start in range(0, len(order), batch_size):
                chunk = order[start: start + batch_size]
                batch = self.app.collate([features[i] for i in chunk])
                batch.pop("labels", None)
                out = self.model(**batch)["logits"].float()
                states = torch.stack([hidden[:, 0] for hidden in seen.hidden], dim=1).float()
                for row, index in enumerate(chunk):
                    logits[index], cls[index] = out[row], states[row]
        if not features:
            return {"logits": torch.zeros(0, len(self.app.labels or [])), "cls": torch.zeros(0)}
        return {"logits": torch.stack(logits).contiguous(), "cls": torch.stack(cls).contiguous()}

    def _key(self, records: list[dict[str, Any]]) -> str:
        """A digest of the teacher's weights, its input settings and the texts (not their labels)."""
        digest = hashlib.sha256(self.digest.encode())
        digest.update(json.dumps({"max_length": self.app.max_length, "outputs": CACHED}).encode())
        for record in records:
            digest.update(json.dumps({key: value for key, value in record.items()
                                      if key not in ("label", "_where")}, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:20]


def _short(labels: Any) -> str:
    labels = list(labels or [])
    return ", ".join(map(str, labels[:6])) + (", ..." if len(labels) > 6 else "")


def cache_files(folder: Path) -> list[Path]:
    """The teacher outputs cached in a folder."""
    folder = Path(folder)
    return sorted(folder.glob("*.safetensors")) if folder.is_dir() else []


