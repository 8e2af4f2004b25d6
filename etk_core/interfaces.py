"""The component interfaces plugins implement: Reader, Dataset, Backbone, App, Algorithm, Strategy, Exporter.

Every component class carries `name` (unique within its kind), `description` (one line) and `options`
(extra config keys of its section, as `etk_core.config.Option`s with defaults).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np
    import torch

    from etk_core.config import Option
    from etk_core.run import Run
    from etk_core.training.loop import LoopResult
    from etk_core.training.plan import Stage

#: One example as a dict with canonical keys (`text`, `text_pair`, `label`, `domain`, ...) and `_where`,
#: the "file:line" it came from, for error messages.
Record = dict[str, Any]


class Component:
    """Base of every registered component."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = {}


@dataclass
class RawRow:
    """A row as read from a source, before column mapping; `error` is set when it could not be parsed."""

    values: dict[str, Any] | None
    where: str
    error: str | None = None


class Reader(Component, ABC):
    """Reads rows lazily from one source (a file, a table) and reports malformed input with its location."""

    #: File suffixes this reader handles, e.g. (".tsv",).
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: Readers with a higher priority are asked first (for readers whose `accepts` looks at the content).
    priority: ClassVar[int] = 0

    def __init__(self, source: str, options: dict[str, Any]) -> None:
        self.source = source
        self.options = options

    @classmethod
    def accepts(cls, source: str) -> bool:
        """Whether this reader can read `source` (by default: by file suffix)."""
        return source.lower().endswith(cls.suffixes) if cls.suffixes else False

    @abstractmethod
    def rows(self) -> Iterator[RawRow]:
        """Yield every row in order, with its location."""


class Dataset(Component, ABC):
    """A named dataset that materialises its own records (synthetic, shared folder, packaged)."""

    splits: ClassVar[tuple[str, ...]] = ("train", "dev")

    @abstractmethod
    def records(self, split: str) -> list[Record]:
        """The records of one split, with canonical keys."""


class Backbone(Component, ABC):
    """A pre-trained (or preset, randomly initialised) encoder and its tokenizer."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    @abstractmethod
    def load(self) -> tuple[Any, Any]:
        """Return `(encoder, tokenizer)`: a Hugging Face model giving `last_hidden_state`, and its tokenizer."""

    @classmethod
    def load_tokenizer(cls, folder: Path) -> Any:
        """The tokenizer an artifact saved in `folder`."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder)

    @classmethod
    def load_config(cls, folder: Path) -> Any:
        """The encoder config an artifact saved in `folder` (a backbone with its own config class reads it
        itself; transformers' AutoConfig knows only registered model types)."""
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(folder)

    @classmethod
    def encoder_from_config(cls, config: Any) -> Any:
        """Rebuild the encoder (weights uninitialised) from its saved config, for loading an artifact."""
        from transformers import AutoModel

        return AutoModel.from_config(config)


class App(Component, ABC):
    """A task: records to tensors, the head and loss, metrics, and user-facing predictions."""

    #: Name of the dev metric that selects the best checkpoint (higher is better).
    main_metric: ClassVar[str] = "accuracy"
    #: Canonical record keys the app needs in training data.
    required_columns: ClassVar[tuple[str, ...]] = ("text", "label")

    def __init__(self, options: dict[str, Any], tokenizer: Any, max_length: int,
                 labels: list[str] | None = None) -> None:
        self.options = options
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.labels = labels

    @property
    def uses_encoder(self) -> bool:
        """Whether the model reads the backbone encoder (False: a classic model that takes only its tokens, so
        the encoder's position limit does not bound `max_length`)."""
        return True

    @abstractmethod
    def fit_labels(self, records: list[Record]) -> None:
        """Fix the label set from the training records."""

    @abstractmethod
    def encode(self, record: Record, with_label: bool = True) -> dict[str, Any]:
        """Turn one record into features (token ids, label id); an unknown label is a DataError."""

    def encode_all(self, records: list[Record], with_label: bool = True) -> list[dict[str, Any]]:
        """Features of many records. An app may emit several per record (e.g. windows over a long passage);
        each then carries `owner`, the index of its record, for `metrics` and `postprocess` to regroup."""
        return [self.encode(record, with_label) for record in records]

    def length(self, features: dict[str, Any]) -> int:
        """Length used for bucketing (tokens)."""
        return len(features["input_ids"])

    @abstractmethod
    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad a list of features into a batch (dynamic padding to the longest)."""

    @abstractmethod
    def build_model(self, encoder: Any) -> torch.nn.Module:
        """The task model around `encoder`: `forward(**batch)` returns a dict with `logits` (and `loss` with labels)."""

    @abstractmethod
    def metrics(self, outputs: dict[str, np.ndarray], features: list[dict[str, Any]]) -> dict[str, float]:
        """Metrics from concatenated model outputs and the matching features (labels inside)."""

    @abstractmethod
    def postprocess(self, outputs: dict[str, np.ndarray], records: list[Record],
                    features: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """User-facing predictions, one dict per record (`outputs` are per feature, see `encode_all`)."""

    def state(self) -> dict[str, Any]:
        """What the artifact must store to rebuild the app (labels, options)."""
        return {"labels": self.labels, "options": self.options}

    #: Names of the model outputs that the exported graph returns (post-processing reads them).
    export_outputs: ClassVar[tuple[str, ...]] = ("logits",)

    def export_samples(self) -> list[Record]:
        """Records of varied lengths used to trace the export and check it against PyTorch."""
        words = "the quick brown fox jumps over the lazy dog while it rains".split()
        return [{"text": " ".join(words[: 2 + (5 * i) % len(words)] * (1 + i)), "_where": f"sample {i + 1}"}
                for i in range(6)]


class Strategy(Component, ABC):
    """Where and how training runs (single process, data parallel, ...)."""

    #: Whether `--resume` can continue a run trained with this strategy (its checkpoints hold everything).
    resumable: ClassVar[bool] = True

    def __init__(self, options: dict[str, Any], train: dict[str, Any]) -> None:
        self.options = options
        self.train = train

    @abstractmethod
    def accelerator(self) -> Any:
        """An `accelerate.Accelerator` set up for this strategy."""

    def engine(self) -> Any:
        """The `etk_core.training.engine.TrainEngine` the core training loop runs with."""
        from etk_core.training.engine import AccelerateEngine

        return AccelerateEngine(self.accelerator())

    def check(self, app: App, encoder: Any) -> None:
        """Refuse, before the run folder is written, a model this strategy cannot train (a ConfigError)."""
        return None

    #: Whether this strategy's engine runs an algorithm's own step (several streams, extra modules).
    own_steps: ClassVar[bool] = True

    def check_algorithm(self, algorithm: type[Algorithm]) -> None:
        """Refuse, before anything is written, an algorithm this strategy cannot run (a ConfigError)."""
        if algorithm.own_step and not self.own_steps:
            from etk_core.errors import ConfigError

            raise ConfigError(f"--strategy {self.name} trains an app model's own loss only; algorithm "
                              f"{algorithm.name!r} has its own step: use --strategy single or ddp")

    def processes(self) -> int:
        """How many worker processes the run needs (more than one: etk launches them)."""
        return 1

    def is_main_process(self) -> bool:
        """Whether this process writes the run folder and prints the results."""
        return True

    def barrier(self) -> None:
        """Wait for every worker process (nothing to wait for in one process)."""


class Algorithm(Component, ABC):
    """A training procedure over an app, a backbone and data in named roles, as one or more stages that the
    core's training engine runs (`etk_core.training.Stage`: streams, a step, extra and frozen modules, hooks).
    Its own state (selector statistics, a matrix, cached decisions) goes through `state_dict` and
    `load_state_dict`, so checkpoints hold it and `--resume` restores it."""

    #: Data roles that must be given (`--data ROLE=...`).
    roles: ClassVar[tuple[str, ...]] = ("train",)
    #: Data roles that may be given.
    optional_roles: ClassVar[tuple[str, ...]] = ("dev", "test")
    #: Strategies the algorithm can run under (None: any).
    strategies: ClassVar[tuple[str, ...] | None] = None
    #: Whether `--resume` can continue an interrupted run.
    resumable: ClassVar[bool] = True
    #: Apps the algorithm can train (None: any app whose model returns `logits` and `loss`, checked by
    #: `check_app`).
    apps: ClassVar[tuple[str, ...] | None] = None
    #: Whether a stage of the algorithm has its own step function (strategies check what they can run).
    own_step: ClassVar[bool] = False

    @classmethod
    def check_app(cls, app_cls: type[App], app_options: dict[str, Any]) -> None:
        """Refuse, before anything is written, an app this algorithm cannot train (a ConfigError)."""
        if cls.apps is not None and app_cls.name not in cls.apps:
            from etk_core.errors import ConfigError

            raise ConfigError(f"algorithm {cls.name!r} trains --app {' or '.join(cls.apps)}, not {app_cls.name!r}")

    def check_run(self, run: Run) -> None:
        """Refuse, once the data is read and the backbone loaded but before anything is written, a run that
        cannot work (e.g. a teacher of another app): a ConfigError or DataError. Default: nothing to check."""
        return None

    def stages(self, run: Run) -> list[str]:
        """Names of the stages, in order (one `train` stage by default)."""
        return ["train"]

    @abstractmethod
    def stage(self, run: Run, name: str) -> Stage:
        """The plan of one stage; built when the stage starts (earlier stages' results are on disk by then)."""

    def summary(self, run: Run, results: dict[str, LoopResult]) -> dict[str, float] | None:
        """The final figures of the run from its stages' results; None: the core's default (the last stage's
        best dev metrics as `dev_*`, the artifact's `test_*` metrics, steps, samples/s, peak memory; see
        `etk_core.training.default_summary`, which an algorithm's own summary can extend)."""
        return None

    @classmethod
    def artifact_model(cls, build: Callable[[], Any], layout: dict[str, Any]) -> Any:
        """Rebuild (weights uninitialised) an artifact's model that wraps the app model, from `layout` (what
        the trained model's `etk_layout` attribute said; kept in etk.json) and `build()`, which makes a fresh
        app model each call. Only algorithms whose models carry `etk_layout` are asked."""
        from etk_core.errors import ArtifactError

        raise ArtifactError(f"algorithm {cls.name!r} cannot rebuild an artifact with a model layout; re-train it")

    def state_dict(self) -> dict[str, Any]:
        """The algorithm's own state for checkpoints: tensors and plain values (JSON-like) only."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (on `--resume`)."""


class Exporter(Component, ABC):
    """Turns a model artifact into a serving artifact."""

    @abstractmethod
    def export(self, artifact: Path, options: dict[str, Any]) -> Path:
        """Write the export next to the artifact and return its path."""
