"""The CRF against brute-force enumeration; constrained Viterbi never yields an invalid BIO sequence."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from etk_apps.sequence_labeling.bio import allowed, entities, is_valid, parse_tag, tag_set
from etk_apps.sequence_labeling.crf import CRF
from etk_apps.sequence_labeling.model import MaskedBiLSTM, first_subtokens
from etk_apps.sequence_labeling.scores import entity_scores
from etk_apps.sequence_labeling.viterbi import constrain, decode, split_table, viterbi

BIO = ["O", "B-A", "I-A", "B-B", "I-B"]


def path_score(emissions, path, transitions, start, end) -> float:
    total = start[path[0]] + end[path[-1]] + sum(emissions[t, tag] for t, tag in enumerate(path))
    return float(total + sum(transitions[a, b] for a, b in zip(path, path[1:])))


def brute_force(emissions, transitions, start, end, valid=lambda path: True):
    """(log Z, best path) over every tag sequence of len(emissions) that `valid` accepts."""
    tags = emissions.shape[1]
    scored = [(path_score(emissions, path, transitions, start, end), list(path))
              for path in itertools.product(range(tags), repeat=len(emissions)) if valid(path)]
    log_z = max(s for s, _ in scored) + math.log(sum(math.exp(s - max(s for s, _ in scored)) for s, _ in scored))
    return log_z, max(scored, key=lambda item: item[0])[1]


@pytest.mark.parametrize("lr_mult", [1.0, 10.0])
def test_log_partition_and_score_equal_brute_force(lr_mult):
    torch.manual_seed(0)
    lengths = [4, 2, 1, 3]
    crf = CRF(3, lr_mult=lr_mult)
    with torch.no_grad():
        for param in crf.parameters():
            param.copy_(torch.randn_like(param) / lr_mult)
    emissions = torch.randn(len(lengths), 4, 3) * 2
    mask = torch.tensor([[t < n for t in range(4)] for n in lengths])
    tags = torch.randint(0, 3, (len(lengths), 4))
    log_z = crf.log_partition(emissions, mask).detach()
    score = crf.score(emissions, tags, mask).detach()
    transitions, start, end = (x.detach().double().numpy() for x in (crf.transitions, crf.start, crf.end))
    for b, n in enumerate(lengths):
        expected, _ = brute_force(emissions[b, :n].double().numpy(), transitions, start, end)
        assert float(log_z[b]) == pytest.approx(expected, abs=1e-4)
        gold = path_score(emissions[b, :n].double().numpy(), tags[b, :n].tolist(), transitions, start, end)
        assert float(score[b]) == pytest.approx(gold, abs=1e-4)
    loss = crf.nll(emissions, tags, mask)
    assert float(loss.detach()) > 0 and loss.requires_grad
    assert torch.equal(crf.table()[:3], crf.transitions) and torch.equal(crf.table()[3], crf.start)


def test_padding_after_the_end_changes_nothing():
    torch.manual_seed(1)
    crf = CRF(4)
    emissions, tags = torch.randn(1, 3, 4), torch.tensor([[1, 2, 0]])
    short = crf.nll(emissions, tags, torch.ones(1, 3, dtype=torch.bool)).detach()
    padded_emissions = torch.cat([emissions, torch.randn(1, 2, 4) * 50], dim=1)
    padded_tags = torch.cat([tags, torch.tensor([[3, 3]])], dim=1)
    mask = torch.tensor([[True, True, True, False, False]])
    assert float(crf.nll(padded_emissions, padded_tags, mask).detach()) == pytest.approx(float(short), abs=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_equals_brute_force_with_variable_lengths(seed):
    rng = np.random.default_rng(seed)
    lengths = [4, 1, 3, 2]
    emissions = rng.normal(size=(len(lengths), 4, 3)) * 2
    table = rng.normal(size=(5, 3))
    transitions, start, end = split_table(table)
    paths = viterbi(emissions, lengths, transitions, start, end)
    for b, n in enumerate(lengths):
        assert paths[b] == brute_force(emissions[b, :n], transitions, start, end)[1]


@pytest.mark.parametrize("seed", range(5))
def test_constrained_viterbi_equals_brute_force_over_valid_sequences(seed):
    rng = np.random.default_rng(seed)
    emissions = [rng.normal(size=(n, len(BIO))) * 3 for n in (4, 2, 1)]
    table = rng.normal(size=(len(BIO) + 2, len(BIO)))
    transitions, start, end = split_table(table)
    for rows, path in zip(emissions, decode(emissions, table, BIO)):
        valid = lambda p: is_valid([BIO[t] for t in p])  # noqa: E731
        assert path == brute_force(rows, transitions, start, end, valid)[1]


def test_decoded_sequences_are_always_valid_bio():
    """Property: random emissions that favour I- tags, random or zero tables, never an invalid transition."""
    labels = tag_set(["B-PER", "B-LOC", "B-ORG", "B-MISC"])
    rng = np.random.default_rng(7)
    inside = [i for i, label in enumerate(labels) if label.startswith("I-")]
    for trial in range(60):
        batch = [rng.normal(size=(int(rng.integers(1, 12)), len(labels))) * 4 for _ in range(8)]
        for rows in batch:
            rows[:, inside] += 3.0  # the unconstrained argmax is mostly an invalid I- tag
        table = rng.normal(size=(len(labels) + 2, len(labels))) * 2 if trial % 2 else np.zeros(
            (len(labels) + 2, len(labels)))
        for path in decode(batch, table, labels):
            assert is_valid([labels[t] for t in path]), [labels[t] for t in path]
    unconstrained = decode(batch, np.zeros((len(labels) + 2, len(labels))), labels, constrained=False)
    assert not all(is_valid([labels[t] for t in path]) for path in unconstrained)


def test_constraints_and_tag_set():
    start_ok, follows = allowed(BIO)
    assert start_ok == [True, True, False, True, False]
    assert follows[BIO.index("B-A")][BIO.index("I-A")] and follows[BIO.index("I-A")][BIO.index("I-A")]
    assert not follows[BIO.index("O")][BIO.index("I-A")] and not follows[BIO.index("B-B")][BIO.index("I-A")]
    transitions, start, _ = constrain(np.zeros((7, 5)), BIO)
    assert np.isneginf(transitions[0, 2]) and np.isneginf(start[4]) and transitions[1, 2] == 0
    assert tag_set(["O", "I-LOC", "B-PER", "O"]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert parse_tag("B-GPE-X") == ("B", "GPE-X")
    for bad in ("S-PER", "B-", "b-per", "PER"):
        with pytest.raises(ValueError, match="not a BIO tag"):
            parse_tag(bad)


def test_entities_follow_conlleval():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "B-ORG"]
    assert entities(tags) == [("PER", 0, 2), ("LOC", 3, 5), ("LOC", 5, 6), ("ORG", 6, 7), ("ORG", 7, 8)]
    assert entities(["O", "O"]) == [] and entities(["I-X"]) == [("X", 0, 1)]
    assert is_valid(["O", "B-X", "I-X", "B-Y"]) and not is_valid(["I-X"]) and not is_valid(["B-Y", "I-X"])


def test_entity_scores():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["O", "B-ORG"]]
    scores = entity_scores(gold, predicted)
    # gold PER(0,2) LOC ORG; predicted PER(0,1) LOC ORG -> 2 of 3 right each way
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3) and scores["accuracy"] == pytest.approx(5 / 6)
    assert scores["f1_PER"] == 0.0 and scores["f1_LOC"] == 1.0
    assert entity_scores([["O"]], [["O"]])["f1"] == 0.0
    assert entity_scores([["B-X", "I-X"]], [["O", "O"]])["recall"] == 0.0


def test_bilstm_outputs_do_not_depend_on_padding():
    torch.manual_seed(0)
    lstm = MaskedBiLSTM(6, 5).eval()
    values = torch.randn(1, 4, 6)
    alone = lstm(values, torch.ones(1, 4, dtype=torch.long))
    padded = torch.cat([values, torch.randn(1, 3, 6)], dim=1)
    batched = lstm(padded, torch.tensor([[1, 1, 1, 1, 0, 0, 0]]))
    assert torch.allclose(alone, batched[:, :4], atol=1e-6)
    assert alone.shape == (1, 4, 10)


def test_first_subtokens_compacts_words_in_order():
    emissions = torch.arange(2 * 5 * 2, dtype=torch.float).reshape(2, 5, 2)
    labels = torch.tensor([[-100, 1, -100, 0, -100], [-100, 1, 1, 0, -100]])
    words, tags, mask = first_subtokens(emissions, labels)
    assert tags.tolist() == [[1, 0, 0], [1, 1, 0]]
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    assert torch.equal(words[0, :2], emissions[0, [1, 3]]) and torch.equal(words[1], emissions[1, [1, 2, 3]])


def test_brute_force_helper_sanity():
    emissions = np.zeros((2, 2))
    log_z, _ = brute_force(emissions, np.zeros((2, 2)), np.zeros(2), np.zeros(2))
    assert log_z == pytest.approx(math.log(4))
