"""Per-example features for the ``ruder_plank`` instance selection (Ruder & Plank, EMNLP 2017).

Every source example gets one feature vector describing how similar it is to the target domain and how diverse it is
itself; the selection algorithm scores it as ``S(x) = phi(x) . w`` with weights ``w`` found by Bayesian optimisation.

Similarity features compare the example with the *whole* target domain over three representations:

* ``term``: the example's term distribution vs the target set's term distribution (word tokens, lower-cased, regex
  ``\\w+``; shared vocabulary from a ``CountVectorizer`` fitted on source + target);
* ``topic``: the example's LDA topic mixture vs the mean target topic mixture (LDA fitted on source + target counts;
  beyond 2,000 texts on a seeded sample of them, up to half target, to stay fast);
* ``emb``: the example's embedding vs the mean target embedding. Embeddings are not distributions: the divergences
  (Jensen-Shannon, Rényi, Bhattacharyya) compare ``softmax(embedding)`` with ``softmax(mean target embedding)``, while
  cosine, Euclidean and variational (L1) distance use the raw vectors.

Term and topic distributions are smoothed with a small epsilon (``p' = (p + eps) / sum(p + eps)``) before every
measure, so an empty text has the uniform term distribution and no measure divides by zero. The raw measures are kept
(a divergence grows with dissimilarity, cosine with similarity): the optimiser learns the signs.

Diversity features come from the example's own term counts (``p_i`` = its normalised counts): number of word types,
type-token ratio, Shannon entropy, Simpson's index ``sum p_i^2``, Rao's quadratic entropy ``sum_ij p_i p_j d(i, j)``
with ``d(i, j) = 1 - cos(t_i, t_j)`` over the terms' LDA topic profiles (columns of the topic-word matrix), and Rényi
entropy. An empty text has all diversity features 0.

The matrix is z-normalised column-wise; a constant column becomes 0. Everything is vectorised over scipy sparse
matrices: the term measures never densify the ``n x vocabulary`` matrix.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import LatentDirichletAllocation
from sklearn.feature_extraction.text import CountVectorizer

__all__ = ["MEASURES", "DIVERSITY", "REPRESENTATIONS", "feature_names", "source_features"]

RENYI_ALPHA = 0.99
"""The alpha of Rényi divergence and Rényi entropy, as in the paper."""

EPS = 1e-8
"""Additive smoothing of term and topic distributions before the measures."""

MEASURES = ("js", "renyi", "bhattacharyya", "cosine", "euclidean", "variational")
REPRESENTATIONS = ("term", "topic", "emb")
DIVERSITY = ("types", "ttr", "entropy", "simpson", "quadratic", "renyi")

_TOKEN_PATTERN = r"(?u)\w+"
_LDA_MAX_ITER = 10
_LDA_FIT_DOCS = 2000  # sklearn's E-step loops over documents in Python: fitting on all of 12k texts takes ~20 s

RowSum = Callable[[Callable[[np.ndarray, np.ndarray], np.ndarray]], np.ndarray]


def feature_names() -> list[str]:
    """The 24 feature names, in column order: 18 similarity (representation x measure), then 6 diversity."""
    return [f"{r}_{m}" for r in REPRESENTATIONS for m in MEASURES] + [f"div_{d}" for d in DIVERSITY]


# ---------------------------------------------------------------------------------------------------------------------
# elementwise terms of the measures; each row measure is a function of a few sums of these over the vocabulary


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x * log(y)`` with ``0 * log(anything) = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * np.log(y)
    return np.where(x == 0, 0.0, out)


def _js_term(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = 0.5 * (a + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * _xlogy(a, np.where(m > 0, a / m, 1.0)) + 0.5 * _xlogy(b, np.where(m > 0, b / m, 1.0))


def _renyi_term(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.power(a, RENYI_ALPHA) * np.power(b, 1.0 - RENYI_ALPHA)


def _bc_term(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(a * b)


def _dot_term(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * b


def _sq_term(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * a


def _sqdiff_term(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return d * d


def _absdiff_term(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b)


def _divergences(row_sum: RowSum) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Jensen-Shannon, Rényi (``D_alpha(example || target)``) and Bhattacharyya distance from row sums."""
    js = np.maximum(row_sum(_js_term), 0.0)
    with np.errstate(divide="ignore"):
        renyi = np.log(np.maximum(row_sum(_renyi_term), 1e-300)) / (RENYI_ALPHA - 1.0)
        bhat = -np.log(np.maximum(row_sum(_bc_term), 1e-300))
    return js, np.maximum(renyi, 0.0), np.maximum(bhat, 0.0)


def _geometric(row_sum: RowSum, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosine similarity, Euclidean distance and variational (L1) distance from row sums."""
    norm_a = np.sqrt(np.maximum(row_sum(_sq_term), 0.0))
    norm_b = float(np.linalg.norm(b))
    denom = norm_a * norm_b
    cos = np.divide(row_sum(_dot_term), denom, out=np.zeros_like(denom), where=denom > 0)
    euc = np.sqrt(np.maximum(row_sum(_sqdiff_term), 0.0))
    l1 = row_sum(_absdiff_term)
    return cos, euc, l1


def _dense_row_sum(a: np.ndarray, b: np.ndarray) -> RowSum:
    """Row sums ``sum_j f(a_ij, b_j)`` over a dense matrix."""
    return lambda f: f(a, b[None, :]).sum(axis=1)


def _dense_measures(a: np.ndarray, b: np.ndarray, a_div: np.ndarray | None = None,
                    b_div: np.ndarray | None = None) -> list[np.ndarray]:
    """The six measures (``MEASURES`` order) between each row of ``a`` and the vector ``b``.

    The divergences use ``a_div``/``b_div`` when given (e.g. softmaxed vectors), else ``a``/``b``, which must then be
    probability distributions with positive entries.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a_div = a if a_div is None else np.asarray(a_div, dtype=np.float64)
    b_div = b if b_div is None else np.asarray(b_div, dtype=np.float64)
    return [*_divergences(_dense_row_sum(a_div, b_div)), *_geometric(_dense_row_sum(a, b), b)]


def _js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) between each row of ``p`` and ``q`` (a vector or same-shape rows)."""
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    q = np.asarray(q, dtype=np.float64)
    q = np.broadcast_to(q, p.shape)
    return np.maximum(_js_term(p, q).sum(axis=1), 0.0)


def _smooth(p: np.ndarray) -> np.ndarray:
    """Additive epsilon smoothing of the rows of a dense non-negative matrix, renormalised to sum to 1."""
    p = np.asarray(p, dtype=np.float64) + EPS
    return p / p.sum(axis=-1, keepdims=True)


def _softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax (numerically stable)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _row_normalise(counts: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows of a count matrix as probability distributions (empty rows stay 0), and the row totals."""
    totals = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
    inv = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return sp.csr_matrix(sp.diags(inv) @ counts, dtype=np.float64), totals


def _term_measures(probs: sp.csr_matrix, totals: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
    """The six measures between each smoothed sparse row distribution and the smoothed target distribution.

    Row ``i`` smoothed is ``(p_ij + eps) / Z_i`` (``Z_i = sum_j p_ij + V eps``), i.e. the constant ``c_i = eps / Z_i``
    off its non-zeros. So ``sum_j f(a_ij, b_j) = G_f(c_i) + sum_{j in nz(i)} [f(a_ij, b_j) - f(c_i, b_j)]`` with
    ``G_f(c) = sum_j f(c, b_j)``, computed once per distinct ``c_i`` (there are at most two: empty and non-empty).
    """
    n, vocab = probs.shape
    b = _smooth(target)
    z = np.where(totals > 0, 1.0, 0.0) + vocab * EPS
    c = EPS / z
    rows = np.repeat(np.arange(n), np.diff(probs.indptr))
    a_nz = (probs.data + EPS) / z[rows]
    b_nz = b[probs.indices]
    c_nz = c[rows]
    c_values, c_index = np.unique(c, return_inverse=True)

    def row_sum(f: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        base = np.array([f(np.full(vocab, cv), b).sum() for cv in c_values])[c_index]
        return base + np.bincount(rows, weights=f(a_nz, b_nz) - f(c_nz, b_nz), minlength=n)

    return [*_divergences(row_sum), *_geometric(row_sum, b)]


def _diversity(counts: sp.csr_matrix, probs: sp.csr_matrix, totals: np.ndarray,
               term_vectors: np.ndarray | None) -> list[np.ndarray]:
    """The six diversity features (``DIVERSITY`` order) of each row of a count matrix; empty rows give 0."""
    n = counts.shape[0]
    rows = np.repeat(np.arange(n), np.diff(probs.indptr))
    p = probs.data
    types = np.asarray((counts > 0).sum(axis=1)).ravel().astype(np.float64)
    ttr = np.divide(types, totals, out=np.zeros(n), where=totals > 0)
    entropy = -np.bincount(rows, weights=_xlogy(p, np.where(p > 0, p, 1.0)), minlength=n)
    simpson = np.bincount(rows, weights=p * p, minlength=n)
    if term_vectors is None:
        quadratic = np.zeros(n)
    else:
        # sum_ij p_i p_j (1 - u_i . u_j) = (sum_i p_i)^2 - ||sum_i p_i u_i||^2 with unit term vectors u_i
        mix = np.asarray(probs @ term_vectors)
        mass = np.asarray(probs.sum(axis=1)).ravel()
        quadratic = np.maximum(mass * mass - np.einsum("ij,ij->i", mix, mix), 0.0)
    power_sum = np.bincount(rows, weights=np.power(p, RENYI_ALPHA), minlength=n)
    with np.errstate(divide="ignore"):
        renyi = np.where(power_sum > 0, np.log(np.where(power_sum > 0, power_sum, 1.0)) / (1.0 - RENYI_ALPHA), 0.0)
    return [types, ttr, np.maximum(entropy, 0.0), simpson, quadratic, np.maximum(renyi, 0.0)]


def _lda_fit_rows(n_source: int, n_target: int, seed: int) -> np.ndarray:
    """Rows (of the stacked source + target matrix) that the LDA is fitted on.

    All of them up to ``_LDA_FIT_DOCS``; beyond, a seeded sample with up to half target rows, so that the target
    domain's topics are represented however small it is next to the source.
    """
    if n_source + n_target <= _LDA_FIT_DOCS:
        return np.arange(n_source + n_target)
    rng = np.random.default_rng(seed)
    n_t = min(n_target, max(_LDA_FIT_DOCS // 2, _LDA_FIT_DOCS - n_source))
    n_s = min(n_source, _LDA_FIT_DOCS - n_t)
    source_rows = rng.choice(n_source, n_s, replace=False)
    target_rows = n_source + rng.choice(n_target, n_t, replace=False)
    return np.sort(np.concatenate([source_rows, target_rows]))


def _znormalise(x: np.ndarray) -> np.ndarray:
    """Column-wise z-normalisation; non-finite entries become 0 first, a (numerically) constant column becomes 0."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if x.shape[0] == 0:
        return x
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    scale = np.maximum(1.0, np.abs(x).max(axis=0))
    constant = std <= 1e-12 * scale
    out = (x - mean) / np.where(constant, 1.0, std)
    out[:, constant] = 0.0
    return out


def source_features(source_texts: list[str], target_texts: list[str], source_embeddings: np.ndarray,
                    target_embeddings: np.ndarray, topics: int = 20, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(n_source x F float64 matrix, F feature names), z-normalised column-wise (a constant column becomes 0).

    ``F = 24``: ``{term,topic,emb}_{js,renyi,bhattacharyya,cosine,euclidean,variational}`` then
    ``div_{types,ttr,entropy,simpson,quadratic,renyi}`` (see :func:`feature_names`).
    """
    source_texts, target_texts = list(source_texts), list(target_texts)
    n_source, n_target = len(source_texts), len(target_texts)
    names = feature_names()
    source_embeddings = np.asarray(source_embeddings, dtype=np.float64)
    target_embeddings = np.asarray(target_embeddings, dtype=np.float64)
    if n_target == 0:
        raise ValueError("source_features needs at least one target text")
    if topics < 1:
        raise ValueError(f"topics must be >= 1, got {topics}")
    if source_embeddings.ndim != 2 or source_embeddings.shape[0] != n_source:
        raise ValueError(f"source_embeddings must be ({n_source}, d), got {source_embeddings.shape}")
    if target_embeddings.ndim != 2 or target_embeddings.shape[0] != n_target:
        raise ValueError(f"target_embeddings must be ({n_target}, d), got {target_embeddings.shape}")
    if source_embeddings.shape[1] != target_embeddings.shape[1]:
        raise ValueError(f"embedding sizes differ: {source_embeddings.shape[1]} vs {target_embeddings.shape[1]}")
    if n_source == 0:
        return np.zeros((0, len(names))), names

    try:
        counts = sp.csr_matrix(CountVectorizer(lowercase=True, token_pattern=_TOKEN_PATTERN)
                               .fit_transform(source_texts + target_texts), dtype=np.float64)
    except ValueError:  # empty vocabulary: no text has a word token
        counts = None

    zeros = np.zeros(n_source)
    if counts is None:
        term = [zeros] * len(MEASURES)
        topic = [zeros] * len(MEASURES)
        diversity = [zeros] * len(DIVERSITY)
    else:
        src_counts, tgt_counts = counts[:n_source], counts[n_source:]
        src_probs, src_totals = _row_normalise(src_counts)
        target_terms = np.asarray(tgt_counts.sum(axis=0)).ravel()
        target_terms = target_terms / max(target_terms.sum(), 1.0)
        term = _term_measures(src_probs, src_totals, target_terms)

        lda = LatentDirichletAllocation(n_components=topics, learning_method="batch", max_iter=_LDA_MAX_ITER,
                                        random_state=seed)
        lda.fit(counts[_lda_fit_rows(n_source, n_target, seed)])
        mixtures = _smooth(lda.transform(counts))
        target_mix = _smooth(mixtures[n_source:].mean(axis=0))
        topic = _dense_measures(mixtures[:n_source], target_mix)

        profiles = lda.components_.T  # vocabulary x topics: each term's topic profile
        norms = np.linalg.norm(profiles, axis=1, keepdims=True)
        unit = np.divide(profiles, norms, out=np.zeros_like(profiles), where=norms > 0)
        diversity = _diversity(src_counts, src_probs, src_totals, unit)

    target_emb = target_embeddings.mean(axis=0)
    emb = _dense_measures(source_embeddings, target_emb, _softmax(source_embeddings), _softmax(target_emb))

    matrix = np.column_stack([*term, *topic, *emb, *diversity])
    return _znormalise(matrix), names
