"""etk hook implementations of etk-distill: the distillation algorithms and the `student-of-teacher` model."""

from __future__ import annotations

from typing import Any

from etk_core.hookspecs import hookimpl


@hookimpl
def etk_register_algorithms() -> list[type[Any]]:
    from etk_distill.adabert.algorithm import AdaBert
    from etk_distill.distilbert import DistilBert
    from etk_distill.kd import Kd
    from etk_distill.metakd import MetaKd
    from etk_distill.pkd import Pkd
    from etk_distill.tinybert import TinyBert

    return [Kd, Pkd, DistilBert, TinyBert, MetaKd, AdaBert]


@hookimpl
def etk_register_models() -> list[type[Any]]:
    from etk_distill.adabert.backbone import AdaBertCnn
    from etk_distill.student import StudentOfTeacher

    return [StudentOfTeacher, AdaBertCnn]
