"""Baselines with the same data roles and budget as the selectors, so users can compare:
`tgt_only` (target data alone), `src_only` (source alone, model picked and scored on target dev/test),
`mixed` (source and target in one pool, one head), `tl_base` (the TL module: shared encoder with domain heads,
all source kept, i.e. the selectors' model without selection)."""

from __future__ import annotations

from typing import ClassVar

from etk_instancetl.transfer import InstanceTransfer


class TgtOnly(InstanceTransfer):
    name = "tgt_only"
    description = "baseline: fine-tune on the target data alone (source ignored)"
    use_source: ClassVar[bool] = False


class SrcOnly(InstanceTransfer):
    name = "src_only"
    description = "baseline: fine-tune on the source data alone, model picked and evaluated on target dev/test"
    use_target: ClassVar[bool] = False
    source_head: ClassVar[bool] = False


class Mixed(InstanceTransfer):
    name = "mixed"
    description = "baseline: source and target batches through one shared head, all source kept"
    source_head: ClassVar[bool] = False


class TlBase(InstanceTransfer):
    name = "tl_base"
    description = "baseline: shared encoder with domain-specific heads, all source kept (TL without selection)"
