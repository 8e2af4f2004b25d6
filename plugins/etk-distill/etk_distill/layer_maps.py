"""Which teacher layer each student layer starts from or is matched to (layers numbered from 1; 0 is the
embeddings' output)."""

from __future__ import annotations

from etk_core.errors import ConfigError

#: Ways to choose the teacher layers a `student-of-teacher` starts from (or a list of layer numbers).
INIT_CHOICES = ("skip", "first", "last")


def init_layers(choice: str | list[int], teacher_layers: int, student_layers: int) -> list[int]:
    """The teacher layer (1-based) each of the student's layers is copied from: `skip` every (L_T/L_S)-th
    layer from the first (DistilBERT's every other layer: 12→6 gives 1,3,5,7,9,11), `first` the first L_S,
    `last` the last L_S, or an explicit list ("2,4,6" or [2, 4, 6])."""
    if not 1 <= student_layers <= teacher_layers:
        raise ConfigError(f"model.layers={student_layers}: a student has 1 to {teacher_layers} layers (its "
                          f"teacher's)")
    if isinstance(choice, str) and choice not in INIT_CHOICES:
        try:
            choice = [int(part) for part in choice.replace(" ", "").split(",") if part]
        except ValueError:
            raise ConfigError(f"model.init_layers={choice!r}: choose {', '.join(INIT_CHOICES)} or a list of "
                              f"teacher layer numbers like 1,3,5") from None
    if choice == "skip":
        return [1 + round(j * teacher_layers / student_layers) for j in range(student_layers)]
    if choice == "first":
        return list(range(1, student_layers + 1))
    if choice == "last":
        return list(range(teacher_layers - student_layers + 1, teacher_layers + 1))
    layers = [int(layer) for layer in choice]
    if len(layers) != student_layers or any(not 1 <= layer <= teacher_layers for layer in layers):
        raise ConfigError(f"model.init_layers={','.join(map(str, layers))}: give {student_layers} teacher layer "
                          f"numbers between 1 and {teacher_layers}")
    return layers


#: BERT-PKD's strategies for the layers the patient loss matches.
PKD_STRATEGIES = ("skip", "last")


def pkd_layers(strategy: str, teacher_layers: int, student_layers: int) -> list[int]:
    """I(j), the teacher layer matched to student layer j = 1..L_S−1 (the last layer is left to the soft
    loss): `skip` every (L_T/L_S)-th (12→6: 2,4,6,8,10), `last` the last ones before the top (12→6: 7..11)."""
    if strategy == "skip":
        return [round(j * teacher_layers / student_layers) for j in range(1, student_layers)]
    return [teacher_layers - student_layers + j for j in range(1, student_layers)]


def uniform_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """TinyBERT's g(m) = m·L_T/L_S for m = 0..L_S (m = 0: the embeddings)."""
    return [round(m * teacher_layers / student_layers) for m in range(student_layers + 1)]
