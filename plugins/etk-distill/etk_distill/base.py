"""What every distillation algorithm shares: the teacher (checked before anything is written, its outputs
cached), the student's checks, and the final size and speed comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_core.interfaces import Algorithm

TEACHER_OPTION = Option((str, type(None)), None, "the teacher: a run folder or model artifact of the same app "
                        "(null: model.teacher of --model student-of-teacher)", path="folder")
CACHE_OPTION = Option((str, type(None)), None, "folder of the teacher's cached outputs; give several runs the "
                      "same one to compute them once (null: the run's cache/teacher)", path="output")
#: The options every distillation algorithm has.
TEACHER_OPTIONS = {"teacher": TEACHER_OPTION, "teacher_cache": CACHE_OPTION}
#: Records timed one by one for the final latency figures.
LATENCY_RECORDS = 32


class Distiller(Algorithm):
    """Trains the run's model (the student) on `train` against a teacher's outputs."""

    roles: ClassVar[tuple[str, ...]] = ("train",)
    optional_roles: ClassVar[tuple[str, ...]] = ("dev", "test")
    apps: ClassVar[tuple[str, ...] | None] = ("text_classify", "text_match")
    own_step = True
    #: Whether the losses compare teacher and student inside their transformers (token by token).
    layer_losses: ClassVar[bool] = False
    #: Whether those losses compare states of one width (no learnt projection between them).
    same_width: ClassVar[bool] = False

    teacher: Any = None

    def check_run(self, run: Any) -> None:
        from etk_distill.teacher import Teacher, teacher_path

        self.teacher = Teacher(teacher_path(run), run)
        if not self.layer_losses:
            return
        from etk_distill.internals import encoder_of

        if not run.app.uses_encoder:
            raise ConfigError(f"algorithm {self.name!r} matches the student's transformer layers to the "
                              f"teacher's; a classic student (TextCNN, ...) has none: use --algo kd")
        teacher_encoder = encoder_of(self.teacher.model)
        if not self.teacher.same_tokenizer(run.tokenizer):
            raise ConfigError(f"algorithm {self.name!r} compares teacher and student token by token, and "
                              f"--model {run.config['model']['name']} has another tokenizer than the teacher: "
                              f"use --model student-of-teacher, or --algo kd (logits only)")
        widths = (run.encoder.config.hidden_size, teacher_encoder.config.hidden_size)
        if self.same_width and widths[0] != widths[1]:
            raise ConfigError(f"algorithm {self.name!r} compares states of one width; the student's is "
                              f"{widths[0]}, the teacher's {widths[1]}: use --model student-of-teacher or "
                              f"--algo tinybert (learnt projections)")

    def cached(self, run: Any, role: str = "train") -> dict[str, Any]:
        """The teacher's cached outputs for a data role (computed on first use)."""
        folder = run.config["algo"].get("teacher_cache")
        return self.teacher.outputs(run, role, run.config["train"]["eval_batch_size"],
                                    Path(folder) if folder else run.cache_dir / "teacher")

    def summary(self, run: Any, results: dict[str, Any]) -> dict[str, float]:
        from etk_core.training import default_summary

        figures = default_summary(run, results)
        if run.engine().is_main_process:
            figures.update(size_and_speed(run, self.teacher))
        return figures


def size_and_speed(run: Any, teacher: Any) -> dict[str, float]:
    """Parameters of student and teacher, and their CPU latency per example (batch 1, PyTorch) measured now
    on the same records, each encoded with its own tokenizer."""
    import time

    import torch

    student = run.best_artifact().model
    role = "dev" if "dev" in run.records else "train"
    records = run.records[role][:LATENCY_RECORDS]

    def latency(model: Any, app: Any) -> float:
        features = app.encode_all(records, with_label=False)
        batches = [app.collate([feature]) for feature in features]
        model.eval()
        with torch.no_grad():
            for batch in batches[:3]:
                model(**batch)
            start = time.perf_counter()
            for batch in batches:
                model(**batch)
        return (time.perf_counter() - start) / max(1, len(batches)) * 1000

    student_ms, teacher_ms = latency(student, run.app), latency(teacher.model, teacher.app)
    student_params = sum(p.numel() for p in student.parameters())
    return {"student_params": student_params, "teacher_params": teacher.params(),
            "teacher_to_student_params": round(teacher.params() / student_params, 3),
            "student_ms_per_example": round(student_ms, 3), "teacher_ms_per_example": round(teacher_ms, 3),
            "speedup_vs_teacher": round(teacher_ms / max(student_ms, 1e-9), 3)}


def rows(tensor: Any, indices: list[int], device: Any) -> Any:
    """Rows `indices` of a cached tensor, on the training device."""
    import torch

    return tensor[torch.as_tensor(indices, dtype=torch.long)].to(device)


def inputs_of(tensors: dict[str, Any]) -> dict[str, Any]:
    """A batch without its labels (what the teacher is given)."""
    return {key: value for key, value in tensors.items() if key != "labels"}


def attention_mask(tensors: dict[str, Any]) -> Any:
    """The batch's mask of real tokens, as booleans."""
    return tensors["attention_mask"].bool()
