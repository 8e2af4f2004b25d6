"""`adabert`: AdaBERT (Chen et al., IJCAI 2020): a differentiable search of a small CNN student, distilled
from a fine-tuned teacher, then the derived CNN fine-tuned (see `algorithm.AdaBert`).

Modules: `genotype` (the search space, costs, genotypes; plain Python), `ops` and `cells` (the candidate
operations and the cells), `encoder` (the supernet and the derived CNN), `config` (their transformers config,
model_type `etk-adabert`, which the `adabert-cnn` backbone reads back from an artifact through
`Backbone.load_config`), `supernet` (architecture weights, Gumbel-softmax, per-depth heads), `probes` (the
teacher's layer probes), `backbone` (`--model adabert-cnn`), `algorithm` (`--algo adabert`).
"""
