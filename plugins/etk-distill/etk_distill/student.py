"""`student-of-teacher`: the teacher's encoder with fewer layers, each copied from a chosen teacher layer."""

from __future__ import annotations

from typing import Any

from etk_core.config import Option
from etk_core.interfaces import Backbone


def shrink(teacher_encoder: Any, layers: list[int]) -> Any:
    """A copy of `teacher_encoder` keeping only `layers` (1-based teacher layer numbers, in order): the
    embeddings, those layers and the pooler copied, everything else as in the teacher's config."""
    import copy

    from transformers import AutoModel

    from etk_distill.internals import layers_of

    config = copy.deepcopy(teacher_encoder.config)
    config.num_hidden_layers = len(layers)
    student = AutoModel.from_config(config)
    teacher_layers = layers_of(teacher_encoder)
    teacher_state = teacher_encoder.state_dict()
    layer_prefix = {id(module): name for name, module in teacher_encoder.named_modules()}[id(teacher_layers)]
    state = {}
    for key in student.state_dict():
        if key.startswith(layer_prefix + "."):
            index, rest = key[len(layer_prefix) + 1:].split(".", 1)
            state[key] = teacher_state[f"{layer_prefix}.{layers[int(index)] - 1}.{rest}"]
        else:
            state[key] = teacher_state[key]
    student.load_state_dict(state)
    return student


class StudentOfTeacher(Backbone):
    """The teacher's encoder with `model.layers` layers (default half), started from `model.init_layers`."""

    name = "student-of-teacher"
    description = "a copy of a teacher's encoder with fewer layers, copied from chosen teacher layers"
    options = {
        "teacher": Option((str, type(None)), None, "the teacher: a run folder or model artifact of the same app",
                          path="folder"),
        "layers": Option((int, type(None)), None, "the student's layers (null: half the teacher's)", min=1),
        "init_layers": Option(str, "skip", "teacher layers the student starts from: skip (every L_T/L_S-th "
                                           "from the first), first, last, or a list like 1,3,5"),
    }

    def load(self) -> tuple[Any, Any]:
        from etk_distill.internals import encoder_of, layer_count
        from etk_distill.layer_maps import init_layers
        from etk_distill.teacher import backbone_teacher

        teacher = backbone_teacher(self.options.get("teacher"), self.name)
        total = layer_count(teacher.model)
        count = self.options.get("layers") or max(1, total // 2)
        layers = init_layers(self.options.get("init_layers") or "skip", total, count)
        return shrink(encoder_of(teacher.model), layers), teacher.app.tokenizer
