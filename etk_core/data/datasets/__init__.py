"""Built-in named datasets: synthetic ones, benchmarks from the shared folder, and packaged real data."""

from __future__ import annotations

from etk_core.data.datasets.amazon import Amazon, AmazonBooks, AmazonDvd, AmazonElectronics, AmazonKitchen
from etk_core.data.datasets.benchmarks import CikmEnglish, Mnli, Qqp, Sst2
from etk_core.data.datasets.shared import shared_datasets_dir
from etk_core.data.datasets.synthetic import SyntheticDomains, SyntheticPairs, SyntheticSentiment
from etk_core.data.datasets.vader import VaderAmazon

BUILTIN_DATASETS = (SyntheticSentiment, SyntheticDomains, SyntheticPairs, VaderAmazon, AmazonBooks, AmazonDvd,
                    AmazonElectronics, AmazonKitchen, Amazon, Qqp, Mnli, Sst2, CikmEnglish)

__all__ = ["BUILTIN_DATASETS", "shared_datasets_dir"]
