"""Per-example similarity and diversity features of the ruder_plank selection."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from etk_instancetl import selection_features as sf
from etk_instancetl.selection_features import feature_names, source_features

SPORT_WORDS = "team goal match striker keeper league coach penalty referee fans stadium season final score".split()
COOKING_WORDS = "flour sugar butter oven dough onion garlic pepper salt whisk batter simmer bake recipe".split()


def _texts(words: list[str], n: int, seed: int) -> list[str]:
    """``n`` texts of 8-14 words drawn from a small topical vocabulary (disjoint vocabularies, separable topics)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=int(rng.integers(8, 15)))) for _ in range(n)]


SPORT = _texts(SPORT_WORDS, 20, seed=1)
COOKING = _texts(COOKING_WORDS, 8, seed=2)
DISTINCT = "oven flour sugar butter dough garlic"  # six words, six types
REPETITIVE = "goal goal goal goal goal goal"  # six words, one type


def _embed(texts: list[str], dim: int = 16) -> np.ndarray:
    """Deterministic toy embeddings: the mean of per-word random vectors (same text, same vector)."""
    out = np.zeros((len(texts), dim))
    for i, text in enumerate(texts):
        words = text.lower().split()
        for w in words:
            out[i] += np.random.default_rng(sum(map(ord, w)) * 7919 + len(w)).normal(size=dim)
        out[i] /= max(len(words), 1)
    return out


def _features(source: list[str], target: list[str], **kwargs) -> tuple[np.ndarray, list[str]]:
    return source_features(source, target, _embed(source), _embed(target), **kwargs)


@pytest.fixture(scope="module")
def mixed() -> tuple[np.ndarray, list[str], list[str]]:
    """Source = copies of target (sport) texts, unrelated (cooking) texts, a distinct, a repetitive and an empty one."""
    source = SPORT[:3] + COOKING + [DISTINCT, REPETITIVE, ""]
    x, names = _features(source, SPORT, topics=2, seed=0)
    return x, names, source


def test_shape_names_and_znormalisation(mixed):
    x, names, source = mixed
    assert x.shape == (len(source), 24) and x.dtype == np.float64
    assert names == feature_names() and len(set(names)) == 24
    assert names[:6] == [f"term_{m}" for m in sf.MEASURES] and names[-6:] == [f"div_{d}" for d in sf.DIVERSITY]
    assert {"term_js", "topic_renyi", "emb_cosine", "div_ttr", "div_quadratic"} <= set(names)
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-9)
    std = x.std(axis=0)
    assert np.all(np.isclose(std, 1.0) | np.isclose(std, 0.0))
    assert np.isclose(std, 1.0).sum() >= 20  # nearly every feature varies over this mixed source set


def test_copy_of_a_target_text_is_more_similar_than_an_unrelated_one(mixed):
    x, names, source = mixed
    col = {n: x[:, i] for i, n in enumerate(names)}
    copies, unrelated = [0, 1, 2], list(range(3, 3 + len(COOKING)))
    for rep in sf.REPRESENTATIONS:
        for dist in ("js", "renyi", "bhattacharyya", "euclidean", "variational"):  # distances: lower for copies
            assert col[f"{rep}_{dist}"][copies].max() < col[f"{rep}_{dist}"][unrelated].min(), f"{rep}_{dist}"
        assert col[f"{rep}_cosine"][copies].min() > col[f"{rep}_cosine"][unrelated].max(), f"{rep}_cosine"


def test_diversity_orders_distinct_above_repetitive(mixed):
    x, names, source = mixed
    col = {n: x[:, i] for i, n in enumerate(names)}
    distinct, repetitive = source.index(DISTINCT), source.index(REPETITIVE)
    for name in ("div_types", "div_ttr", "div_entropy", "div_renyi", "div_quadratic"):
        assert col[name][distinct] > col[name][repetitive], name
    assert col["div_simpson"][distinct] < col["div_simpson"][repetitive]


def test_empty_text_gives_zero_diversity_and_no_nan():
    counts = sp.csr_matrix(np.array([[0, 0, 0], [2, 1, 0]], dtype=float))
    probs, totals = sf._row_normalise(counts)
    div = sf._diversity(counts, probs, totals, np.eye(3))
    assert all(d[0] == 0.0 for d in div) and all(np.isfinite(d).all() for d in div)
    x, _ = _features(["", "one two three", ""], SPORT[:2])
    assert np.isfinite(x).all()
    x, _ = _features(["", "!!"], ["?", ""])  # no word token anywhere: empty vocabulary
    assert x.shape == (2, 24) and np.isfinite(x).all()


def test_diversity_matches_definitions():
    rng = np.random.default_rng(3)
    counts = rng.poisson(0.8, size=(5, 12)).astype(float)
    counts[0] = [3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    unit = rng.random((12, 4))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    probs, totals = sf._row_normalise(sp.csr_matrix(counts))
    types, ttr, entropy, simpson, quadratic, renyi = sf._diversity(sp.csr_matrix(counts), probs, totals, unit)
    for i, c in enumerate(counts):
        p = c / c.sum()
        nz = p[p > 0]
        assert types[i] == (c > 0).sum() and np.isclose(ttr[i], (c > 0).sum() / c.sum())
        assert np.isclose(entropy[i], -(nz * np.log(nz)).sum()) and np.isclose(simpson[i], (p**2).sum())
        assert np.isclose(quadratic[i], p @ (1.0 - unit @ unit.T) @ p)
        assert np.isclose(renyi[i], np.log((nz**0.99).sum()) / (1 - 0.99))
    assert np.isclose(entropy[0], -(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))


def test_js_helper():
    p = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(sf._js(p, p), 0.0, atol=1e-15)
    np.testing.assert_allclose(sf._js(p[1], np.array([0.0, 0.5, 0.5])), np.log(2.0))  # disjoint supports
    q = np.array([0.5, 0.25, 0.25])
    np.testing.assert_allclose(sf._js(p, q), sf._js(np.broadcast_to(q, p.shape), p))  # symmetric
    assert (sf._js(p, q) > 0).all()


def test_dense_measures_match_their_definitions():
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(6), size=4)
    b = rng.dirichlet(np.ones(6))
    js, renyi, bhat, cos, euc, l1 = sf._dense_measures(a, b)
    for i, ai in enumerate(a):
        m = 0.5 * (ai + b)
        assert np.isclose(js[i], 0.5 * (ai * np.log(ai / m)).sum() + 0.5 * (b * np.log(b / m)).sum())
        assert np.isclose(renyi[i], np.log((ai**0.99 * b**0.01).sum()) / (0.99 - 1))
        assert np.isclose(bhat[i], -np.log(np.sqrt(ai * b).sum()))
        assert np.isclose(cos[i], ai @ b / np.linalg.norm(ai) / np.linalg.norm(b))
        assert np.isclose(euc[i], np.linalg.norm(ai - b)) and np.isclose(l1[i], np.abs(ai - b).sum())
    same = sf._dense_measures(b[None, :], b)
    np.testing.assert_allclose([same[0][0], same[1][0], same[2][0], same[4][0], same[5][0]], 0.0, atol=1e-12)
    assert np.isclose(same[3][0], 1.0)


def test_sparse_term_measures_equal_dense_smoothed_ones():
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.3, size=(8, 40)).astype(float)
    counts[2] = 0.0  # an empty text: uniform after smoothing
    target = rng.dirichlet(np.full(40, 0.5))
    target[:5] = 0.0
    target /= target.sum()
    probs, totals = sf._row_normalise(sp.csr_matrix(counts))
    sparse = sf._term_measures(probs, totals, target)
    dense = sf._dense_measures(sf._smooth(probs.toarray()), sf._smooth(target))
    for name, s, d in zip(sf.MEASURES, sparse, dense):
        np.testing.assert_allclose(s, d, rtol=1e-9, atol=1e-12, err_msg=name)


def test_deterministic_and_seeded():
    source, target = SPORT[3:] + COOKING, SPORT[:3]
    a, _ = _features(source, target, topics=3, seed=0)
    b, _ = _features(source, target, topics=3, seed=0)
    np.testing.assert_array_equal(a, b)
    c, _ = _features(source, target, topics=3, seed=1)
    assert not np.array_equal(a[:, 6:12], c[:, 6:12])  # the seed reaches the LDA (topic columns)


def test_constant_column_becomes_zero_and_edge_cases():
    z = sf._znormalise(np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]]))
    np.testing.assert_allclose(z[:, 0], [-1.2247448714, 0.0, 1.2247448714])
    assert (z[:, 1] == 0.0).all()
    x, names = _features([], SPORT)
    assert x.shape == (0, 24) and len(names) == 24
    x, _ = _features(["one single text"], SPORT)
    assert x.shape == (1, 24) and (x == 0.0).all()


def test_rejects_inconsistent_inputs():
    with pytest.raises(ValueError, match="target"):
        source_features(["a b"], [], _embed(["a b"]), np.zeros((0, 16)))
    with pytest.raises(ValueError, match="source_embeddings"):
        source_features(["a b", "c"], ["d"], _embed(["a b"]), _embed(["d"]))
    with pytest.raises(ValueError, match="embedding sizes"):
        source_features(["a b"], ["d"], _embed(["a b"], dim=8), _embed(["d"], dim=4))


def test_lda_fit_rows_sample_keeps_target_represented():
    rows = sf._lda_fit_rows(10_000, 300, seed=0)
    assert len(rows) == sf._LDA_FIT_DOCS and len(set(rows.tolist())) == len(rows)
    assert (rows >= 10_000).sum() == 300  # every target text, the source fills the rest
    rows = sf._lda_fit_rows(10_000, 5_000, seed=0)
    assert (rows >= 10_000).sum() == sf._LDA_FIT_DOCS // 2
    np.testing.assert_array_equal(sf._lda_fit_rows(100, 50, seed=0), np.arange(150))
