"""Every feature-based algorithm passes the Algorithm contract: SIGKILL + --resume gives the uninterrupted run's
weights (private parts, discriminator, Ω and stream positions are checkpointed), ddp is refused in one line,
and the metrics rows follow the documented format."""

from __future__ import annotations

from typing import ClassVar

from etk_core.testing import AlgorithmContract, needs_packaged_minilm

pytestmark = needs_packaged_minilm()


class FeatureContract(AlgorithmContract):
    data: ClassVar[dict[str, str]] = {"source": "synthetic_domains:train", "target": "synthetic_sentiment:train",
                                      "dev": "synthetic_sentiment:dev"}


class TestFs(FeatureContract):
    component_name = "fs"


class TestSp(FeatureContract):
    component_name = "sp"
    algo_sets: ClassVar[list[str]] = ["algo.private=top", "algo.private_layers=1"]


class TestSpAdv(FeatureContract):
    component_name = "sp_adv"


class TestDrss(FeatureContract):
    component_name = "drss"
    data: ClassVar[dict[str, str]] = {**FeatureContract.data, "source": "synthetic_sentiment:test"}
    # an epoch of the 96 target rows is 12 steps of 8: one Ω update at the end; two with data.max_rows=48
    algo_sets: ClassVar[list[str]] = ["data.max_rows=48"]


class TestDrssAdv(TestDrss):
    component_name = "drss_adv"


class TestSrcThenTgt(FeatureContract):
    component_name = "src_then_tgt"
