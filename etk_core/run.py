"""A prepared training run: components resolved, data read and encoded, before any folder is written."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etk_core import config as config_mod
from etk_core.artifact import DOMAINS_DIR
from etk_core.errors import ConfigError, DamagedFileError, EtkError
from etk_core.interfaces import Algorithm, App, Record, Strategy
from etk_core.registry import get_component

logger = logging.getLogger("etk.run")


def default_output(config: dict[str, Any]) -> Path:
    """runs/<app>-<algo>-<time> in the working directory."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config['app']['name']}-{config['algo']['name']}-{stamp}"


#: Data roles at least this large get a notice before they are tokenised (it takes a while on CPU).
TOKENISE_NOTICE_RECORDS = 2000


@dataclass
class Run:
    """Everything an Algorithm needs: config, app, encoder, data by role, strategy and the run folder."""

    config: dict[str, Any]
    dir: Path
    app: App
    encoder: Any
    tokenizer: Any
    algorithm: Algorithm
    strategy: Strategy
    records: dict[str, list[Record]]
    resume: bool = False
    reporter: Any = None  # an `etk_core.training.reporter.Reporter` (None: silent)
    lock: Any = None  # the run folder's lock while this process writes it (see `lock_folder`)
    _features: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _engine: Any = None
    _best: Any = None

    def features(self, role: str) -> list[dict[str, Any]]:
        """Encoded features of a data role (cached)."""
        if role not in self._features:
            if self.reporter is not None and len(self.records[role]) >= TOKENISE_NOTICE_RECORDS:
                self.reporter.notice(f"tokenising {len(self.records[role])} records of {role!r}")
            self._features[role] = self.app.encode_all(self.records[role])
        return self._features[role]

    def groups(self, role: str, key: str = "domain") -> list[Any] | None:
        """One `key` value (e.g. the domain) per feature of a role, where every record has one and the app
        makes one feature per record; else None."""
        records = self.records[role]
        if not records or any(record.get(key) in (None, "") for record in records):
            return None
        features = self.features(role)
        if len(features) != len(records) or any("owner" in feature for feature in features):
            return None
        return [record[key] for record in records]

    @property
    def cache_dir(self) -> Path:
        """The run's folder for what an algorithm computes once and reuses across epochs and `--resume`
        (e.g. a teacher's outputs); created by whoever writes into it first."""
        return self.dir / CACHE_DIR

    def engine(self) -> Any:
        """This process's `TrainEngine` (one per run, from the strategy)."""
        if self._engine is None:
            self._engine = self.strategy.engine()
        return self._engine

    def build_model(self) -> Any:
        """The app's task model around the backbone's encoder."""
        if self.config["train"]["gradient_checkpointing"]:
            if not getattr(self.encoder, "supports_gradient_checkpointing", False):
                raise ConfigError(f"{type(self.encoder).__name__} does not support train.gradient_checkpointing; "
                                  f"drop --set train.gradient_checkpointing=true")
            self.encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model = self.app.build_model(self.encoder)
        return model.double() if self.config["train"]["precision"] == "fp64" else model

    def stream(self, role: str, batch_size: int | None = None, **options: Any) -> Any:
        """A training stream over a data role's features (batch size and bucketing from `train`)."""
        from etk_core.training.plan import Stream

        return Stream(self.features(role), batch_size or self.config["train"]["batch_size"],
                      bucket=self.config["train"]["bucket"], **options)

    def dev(self, role: str = "dev") -> list[dict[str, Any]] | None:
        """Features of the dev role, if it was given."""
        return self.features(role) if role in self.records else None

    def fit(self, model: Any, train: str = "train", dev: str | None = "dev", save_best: bool = True) -> Any:
        """Train `model` on role `train` with the engine's loop, selecting by role `dev`; returns a LoopResult
        (one stage of plain supervised training; algorithms declare their stages instead)."""
        from etk_core.training.loop import TrainingLoop
        from etk_core.training.plan import Stage

        stage = Stage(model=model, streams={train: self.stream(train)}, dev=self.dev(dev) if dev else None)
        on_best = (lambda best_model, metrics: self.save_artifact(best_model, metrics)) if save_best else None
        loop = TrainingLoop(stage=stage, app=self.app, config=self.config, engine=self.engine(), run_dir=self.dir,
                            on_best=on_best, reporter=self.reporter)
        result = loop.fit()
        self.strategy.barrier()  # the main process has written the artifact before anyone reads it
        return result

    def evaluate(self, model: Any, role: str) -> dict[str, float]:
        """Metrics of `model` on a data role."""
        from etk_core.predict import evaluate_features

        return evaluate_features(model, self.app, self.features(role), self.config["train"]["eval_batch_size"])

    def save_artifact(self, model: Any, metrics: dict[str, float], folder: str | None = None) -> Path:
        """Write (or replace) a model artifact of this run (default: the run's `model/`)."""
        from etk_core.artifact import ARTIFACT_DIR, save_artifact

        if folder in (None, ARTIFACT_DIR):
            self._best = None
        return save_artifact(self.dir / (folder or ARTIFACT_DIR), model=model, app=self.app,
                             tokenizer=self.tokenizer, encoder_config=self.encoder.config, config=self.config,
                             metrics=metrics)

    def best_artifact(self) -> Any:
        """The run's model artifact as loaded from disk, read once (test metrics and export share it)."""
        from etk_core.artifact import load_artifact

        if self._best is None:
            self._best = load_artifact(self.dir)
        return self._best


def check_run(config: dict[str, Any], resume: bool = False) -> tuple[Any, Any, Any]:
    """Resolve the algorithm, app and strategy classes and check that they fit the data roles, the strategy
    and --resume; cheap (no data, no model), so it runs before anything is launched or written."""
    algorithm_cls = get_component("algorithms", config["algo"]["name"])
    app_cls = get_component("apps", config["app"]["name"])
    strategy_cls = get_component("strategies", config["strategy"]["name"])
    sources = config["data"]["sources"]
    known = ", ".join(algorithm_cls.roles + algorithm_cls.optional_roles)
    missing = [role for role in algorithm_cls.roles if role not in sources]
    if missing:
        raise ConfigError(f"algorithm {algorithm_cls.name!r} needs --data {missing[0]}=PATH (its roles: {known})")
    unknown = [role for role in sources if role not in algorithm_cls.roles + algorithm_cls.optional_roles]
    if unknown:
        raise ConfigError(f"algorithm {algorithm_cls.name!r} takes no data role {unknown[0]!r}; its roles: {known}")
    algorithm_cls.check_app(app_cls, config["app"])
    allowed = algorithm_cls.strategies
    if allowed is not None and strategy_cls.name not in allowed:
        raise ConfigError(f"algorithm {algorithm_cls.name!r} runs with --strategy {' or '.join(allowed)}, "
                          f"not {strategy_cls.name!r}")
    strategy_cls(config["strategy"], config["train"]).check_algorithm(algorithm_cls)
    if resume and not strategy_cls.resumable:
        raise ConfigError(f"--strategy {strategy_cls.name} runs cannot be resumed; start a new run without "
                          f"--resume (another --output)")
    if resume and not algorithm_cls.resumable:
        raise ConfigError(f"algorithm {algorithm_cls.name!r} runs cannot be resumed; start a new run without "
                          f"--resume (another --output)")
    return algorithm_cls, app_cls, strategy_cls


def prepare(config: dict[str, Any], resume: bool = False) -> Run:
    """Resolve components, read and encode all data, load the backbone. Writes nothing."""
    import torch
    from transformers import set_seed

    from etk_core.data.load import load_records
    from etk_core.zoo import load_backbone, max_positions

    algorithm_cls, app_cls, strategy_cls = check_run(config, resume)
    if config["train"]["threads"]:
        torch.set_num_threads(config["train"]["threads"])
    set_seed(config["seed"])
    records = {role: load_records(str(spec), config["data"], required=app_cls.required_columns)
               for role, spec in config["data"]["sources"].items()}
    encoder, tokenizer = load_backbone(config["model"])
    app = app_cls(config["app"], tokenizer, config["train"]["max_length"])
    limit = max_positions(encoder)
    if app.uses_encoder and limit is not None and config["train"]["max_length"] > limit:
        raise ConfigError(f"train.max_length={config['train']['max_length']} is more than model "
                          f"{config['model']['name']!r} reads ({limit} positions); set train.max_length={limit} "
                          f"or less")
    app.fit_labels(records[algorithm_cls.roles[0]])
    algorithm = algorithm_cls()
    strategy = strategy_cls(config["strategy"], config["train"])
    strategy.check(app, encoder)
    run = Run(config=config, dir=Path(config["output"] or default_output(config)), app=app, encoder=encoder,
              tokenizer=tokenizer, algorithm=algorithm, strategy=strategy, records=records, resume=resume)
    for role in records:  # encode now: an unknown label or bad row fails before the run folder exists
        run.features(role)
    algorithm.check_run(run)
    return run


#: What a run writes before its first checkpoint; a folder holding only these (and temporary `.*.tmp`
#: entries, and a `checkpoints/` folder with nothing but those) is a run that failed early: a new run
#: into the same --output replaces it.
EARLY_FILES = frozenset({"config.yaml", "metrics.jsonl", "stages.json", "selection.jsonl", "checkpoints",
                         "cache"})
#: Where an algorithm keeps what it computes once and reuses (a teacher's outputs): `Run.cache_dir`.
CACHE_DIR = "cache"
#: Held (flock) by the process writing a run folder for as long as it runs; the kernel releases it on exit.
LOCK_FILE = ".etk.lock"


def output_state(folder: Path) -> tuple[str, str]:
    """What `folder` holds, as `(state, detail)`: "empty" (missing or empty), "early" (a run that stopped
    before its first checkpoint), "run" (checkpoints, an artifact or a summary) or "other" (files that are
    not etk's; `detail` names one)."""
    if not folder.is_dir() or not any(entry.name != LOCK_FILE for entry in folder.iterdir()):
        return "empty", ""
    state, detail, kept = "early", "", []
    for entry in sorted(folder.iterdir()):
        if (entry.name.startswith(".") and entry.name.endswith(".tmp")) or entry.name == LOCK_FILE:
            continue
        kept.append(entry.name)
        if entry.name == "checkpoints" and entry.is_dir():
            if any(not child.name.startswith(".") for child in entry.iterdir()):
                return "run", "checkpoints"
            continue
        if entry.name in EARLY_FILES and (entry.is_file() or entry.name == CACHE_DIR):
            continue
        if entry.name in ("model", "summary.json", DOMAINS_DIR) or entry.name.endswith(".old"):
            return "run", entry.name
        state, detail = "other", entry.name
    if state == "early" and kept and "config.yaml" not in kept:  # not started by etk (it writes that first)
        return "other", kept[0]
    return state, detail


def check_output(folder: Path, resume: bool) -> str:
    """Refuse an --output that a new run must not write into (or, with --resume, one that holds no run);
    cheap, so it runs before any data is read. Returns the folder's state (see `output_state`)."""
    state, detail = output_state(folder)
    if resume:
        if not (folder / "config.yaml").is_file():
            raise EtkError(f"{folder}: nothing to resume (no config.yaml); start it without --resume")
        return state
    if state == "run":
        raise EtkError(f"run folder {folder} already exists and holds a run ({detail}); pass --resume to "
                       f"continue it or choose another --output")
    if state == "other":
        raise EtkError(f"run folder {folder} already exists and holds files that are not a run's ({detail}); "
                       f"choose another --output")
    return state


def _clear_early(folder: Path) -> None:
    """Remove what a run that stopped before its first checkpoint left (see EARLY_FILES)."""
    import shutil

    logger.warning("run folder %s holds a run that stopped before its first checkpoint; starting it again",
                   folder)
    for entry in folder.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def start(run: Run) -> None:
    """Create the run folder (or check it on resume) and save the resolved config."""
    path = run.dir / "config.yaml"
    check_output(run.dir, run.resume)  # refused before the folder is touched
    if run.resume:  # before the lock: a refused resume leaves the folder as it was
        _check_saved_config(run, path)
    run.dir.mkdir(parents=True, exist_ok=True)
    run.lock = lock_folder(run.dir)
    state = check_output(run.dir, run.resume)  # again, under the lock: another run may have started meanwhile
    if run.resume:
        return
    if state == "early":
        _clear_early(run.dir)
    config_mod.save(run.config, path)


def _check_saved_config(run: Run, path: Path) -> None:
    """Refuse a resume whose config differs from the one the run folder saved (or whose copy is damaged)."""
    import yaml

    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DamagedFileError(f"{path} is damaged ({type(exc).__name__}); restore it, or start the run "
                               f"again without --resume (another --output)") from None
    if saved != run.config:
        differing = sorted(_diff_keys(saved, run.config))
        raise ConfigError(f"{run.dir}: resumed with a different config ({', '.join(differing[:3])}); "
                          f"re-run with the original arguments or `--config {path}`")


def lock_folder(folder: Path) -> Any:
    """Take the run folder's lock for this process (the open file holding it); EtkError where another
    process holds it, so two runs never write one folder."""
    import fcntl

    handle = open(folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise EtkError(f"run folder {folder} is being written by {holder}; wait for that run to end or choose "
                       f"another --output") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"etk pid {os.getpid()}")
    handle.flush()
    return handle


def _diff_keys(a: Any, b: Any, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys: set[str] = set()
        for key in set(a) | set(b):
            keys |= _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
        return keys
    return set() if a == b else {prefix.rstrip(".")}
