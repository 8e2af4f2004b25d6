"""Every instance-TL algorithm passes the Algorithm contract: SIGKILL + --resume gives the uninterrupted run's
weights (selector, discriminator, episode, stream positions and RNG are checkpointed), ddp trains, and the
metrics rows follow the documented format."""

from __future__ import annotations

from typing import ClassVar

from etk_core.testing import AlgorithmContract, needs_packaged_minilm

pytestmark = needs_packaged_minilm()

ROLES = {"source": "synthetic_domains:train", "target": "synthetic_sentiment:train",
         "dev": "synthetic_sentiment:dev"}
# selectors from the first step (no warm start), an episode of 2 steps: resuming lands inside an episode
SELECTOR = ["algo.warm_start_steps=0", "algo.episode_steps=2", "algo.reward_dev_size=32", "algo.distance_sample=16"]


class InstanceContract(AlgorithmContract):
    data: ClassVar[dict[str, str]] = ROLES


class TestRtl(InstanceContract):
    component_name = "rtl"
    algo_sets: ClassVar[list[str]] = SELECTOR


class TestMgtl(InstanceContract):
    component_name = "mgtl"
    algo_sets: ClassVar[list[str]] = SELECTOR


class TestRuderPlank(InstanceContract):
    component_name = "ruder_plank"
    algo_sets: ClassVar[list[str]] = ["algo.trials=4", "algo.initial_trials=2", "algo.topics=3",
                                      "algo.select_size=40", "algo.distance_sample=16"]


class TestTgtOnly(InstanceContract):
    component_name = "tgt_only"


class TestSrcOnly(InstanceContract):
    component_name = "src_only"


class TestMixed(InstanceContract):
    component_name = "mixed"


class TestTlBase(InstanceContract):
    component_name = "tl_base"
