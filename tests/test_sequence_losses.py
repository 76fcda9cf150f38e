"""Sequence losses, decoding, data and token windows against independent truths: CTC
against a brute-force sum over every alignment, cross-entropy and its smoothing part against
torch's label-smoothed loss, the Markov chain's entropy rate against its definition and a
long sample, the windows' counts against the batches they were read from."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from objectives.data.batches import InMemoryBatches
from objectives.data.markov_text import entropy_rate, markov_text, stationary
from objectives.data.text_file import text_file
from objectives.data.token_windows import TokenWindows
from objectives.errors import ConfigError
from objectives.losses.sequence import (
    CTC,
    PAD,
    SmoothingPart,
    TokenCrossEntropy,
    ctc_needed_steps,
    real_tokens,
)
from objectives.metrics.sequence import ctc_greedy_decode


def collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    """A CTC path's labels: repeats merged, then blanks dropped."""
    merged = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]
    return tuple(p for p in merged if p != blank)


def brute_force_nll(log_probs: torch.Tensor, target: tuple[int, ...], blank: int = 0) -> float:
    """−log Σ over all C^T paths that collapse to `target` of Π_t p_t(path_t)."""
    steps, classes = log_probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=steps):
        if collapse(path, blank) == target:
            total += math.exp(sum(float(log_probs[t, c]) for t, c in enumerate(path)))
    return -math.log(total) if total > 0 else math.inf


TARGETS = [(1,), (2,), (1, 2), (2, 1), (1, 1), (1, 2, 1), (2, 2)]


@pytest.mark.parametrize("blank", [0, 2])
def test_ctc_is_the_sum_over_every_alignment_for_t4_c3(blank: int) -> None:
    torch.manual_seed(0)
    classes, steps = 3, 4
    labels = [c for c in range(classes) if c != blank]
    targets = [tuple(labels[i - 1] for i in t) for t in TARGETS]
    logits = torch.randn(len(targets), steps, classes, dtype=torch.float64)
    width = max(map(len, targets))
    padded = torch.tensor([list(t) + [PAD] * (width - len(t)) for t in targets])
    lengths = torch.full((len(targets),), steps)
    loss = CTC(blank=blank)
    for i, target in enumerate(targets):
        want = brute_force_nll(logits[i].log_softmax(-1), target, blank)
        got = loss(logits[i : i + 1], padded[i : i + 1, : len(target)], lengths[i : i + 1],
                   torch.tensor([len(target)]), torch.tensor(1.0))  # fmt: skip
        assert float(got) == pytest.approx(want, abs=1e-6), target
    # the batch: the sum of the sequences' losses over the tokens it is given
    want = sum(brute_force_nll(logits[i].log_softmax(-1), t, blank) for i, t in enumerate(targets))
    tokens = torch.tensor(float(sum(map(len, targets))))
    got = loss(logits, padded, lengths, real_tokens(padded), tokens)
    assert float(got) == pytest.approx(want / float(tokens), abs=1e-6)


def test_shorter_inputs_are_read_only_up_to_their_length() -> None:
    torch.manual_seed(1)
    logits = torch.randn(1, 4, 3, dtype=torch.float64)
    target = torch.tensor([[1, 2]])
    got = CTC()(logits, target, torch.tensor([3]), torch.tensor([2]), torch.tensor(1.0))
    assert float(got) == pytest.approx(brute_force_nll(logits[0, :3].log_softmax(-1), (1, 2)))


def test_an_impossible_alignment_is_infinite_or_left_out_never_nan() -> None:
    """(1, 1) needs 3 steps (a blank between the repeats); in 2 steps no path reaches it."""
    logits = torch.randn(2, 2, 3, requires_grad=True)
    targets = torch.tensor([[1, 1], [2, PAD]])
    lengths, target_lengths = torch.tensor([2, 2]), real_tokens(targets)
    assert ctc_needed_steps(targets, target_lengths).tolist() == [3, 1]
    three = torch.tensor(3.0)
    strict = CTC(zero_infinity=False)(logits, targets, lengths, target_lengths, three)
    assert math.isinf(float(strict.detach()))  # the guard names it (test_sequence_train.py)
    lenient = CTC(zero_infinity=True)(logits, targets, lengths, target_lengths, three)
    possible = CTC()(logits[1:], targets[1:, :1], lengths[1:], target_lengths[1:], three)
    assert float(lenient.detach()) == pytest.approx(float(possible.detach()))
    lenient.backward()
    assert torch.isfinite(logits.grad).all() and not logits.grad[0].any()


def test_token_cross_entropy_is_torchs_label_smoothed_loss_and_its_smoothing_part() -> None:
    torch.manual_seed(2)
    logits = torch.randn(3, 5, 7, dtype=torch.float64)
    targets = torch.randint(1, 7, (3, 5))
    targets[0, 2:] = PAD
    targets[2, 4:] = PAD
    tokens = real_tokens(targets).sum().double()
    for eps in (0.0, 0.1, 0.3):
        torch_loss = torch.nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=eps)
        want = torch_loss(logits.flatten(0, 1), targets.flatten())
        got = TokenCrossEntropy(eps)(logits, targets, tokens)
        assert float(got) == pytest.approx(float(want), abs=1e-12)
        nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)
        part = SmoothingPart(eps)(logits, targets, tokens)
        assert float(part) == pytest.approx(float(want - (1 - eps) * nll), abs=1e-12)


def test_a_smoothing_outside_zero_to_one_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"loss.token_ce.fn.label_smoothing must be"):
        TokenCrossEntropy(1.5)


def test_greedy_decoding_is_the_collapsed_best_path() -> None:
    torch.manual_seed(3)
    logits = torch.randn(6, 9, 4)
    lengths = torch.tensor([9, 7, 1, 0, 5, 9])
    decoded = ctc_greedy_decode(logits, lengths)
    for row, length in enumerate(lengths.tolist()):
        want = collapse(tuple(logits[row, :length].argmax(-1).tolist()))
        got = tuple(t for t in decoded[row].tolist() if t != PAD)
        assert got == want
        assert (decoded[row, len(want) :] == PAD).all()


def test_the_entropy_rate_is_the_definition_and_what_a_long_sample_shows() -> None:
    a, b = 0.2, 0.6  # two states: H = π₀·h(a) + π₁·h(b), π = (b, a)/(a + b)
    transitions = torch.tensor([[1 - a, a], [b, 1 - b]], dtype=torch.float64).numpy()
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    assert stationary(transitions) == pytest.approx([b / (a + b), a / (a + b)])
    assert entropy_rate(transitions) == pytest.approx((b * h(a) + a * h(b)) / (a + b))

    data = markov_text(states=5, n_sequences=400, length=200, seed=3)
    inputs, _, targets = data.splits["all"]
    pairs = torch.zeros(6, 6, dtype=torch.float64)
    pairs.index_put_((inputs.flatten(), targets.flatten()), torch.tensor(1.0, dtype=torch.float64),
                     accumulate=True)  # fmt: skip
    conditional = pairs / pairs.sum(1, keepdim=True).clamp_min(1)
    logs = torch.where(conditional > 0, conditional.log(), 0.0)
    empirical = float(-(pairs * logs).sum() / pairs.sum())
    assert empirical == pytest.approx(data.entropy_rate, abs=0.01)
    assert (inputs[:, 1:] == targets[:, :-1]).all()  # targets are the next tokens


def test_a_text_file_becomes_next_character_chunks(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    text = "hello, sequence world!\n" * 3
    path.write_text(text)
    data = text_file(str(path), length=10)
    inputs, lengths, targets = data.splits["all"]
    vocabulary = sorted(set(text))
    assert data.num_tokens == len(vocabulary) + 1
    chars = {i + 1: c for i, c in enumerate(vocabulary)}
    read = "".join(chars[t] for row in targets.tolist() for t in row if t != PAD)
    assert read == text[1:]  # every character after the first is a target once
    assert lengths.tolist() == real_tokens(targets).tolist()
    assert (inputs[targets == PAD] == 0).all()
    with pytest.raises(ConfigError, match="is not a file"):
        text_file(str(tmp_path / "missing.txt"))


def test_windows_carry_the_real_tokens_of_their_accumulation_window() -> None:
    targets = torch.tensor([[1, PAD], [1, 2], [3, PAD], [1, 1], [2, PAD], [PAD, PAD], [1, 2]])
    inputs = torch.zeros(7, 2)
    batches = InMemoryBatches((inputs, torch.ones(7), targets), batch_size=2, drop_last=False)
    windows = list(TokenWindows(batches, accumulate=2))
    counts = [int(real_tokens(b[2]).sum()) for b in batches]
    assert counts == [3, 3, 1, 2]
    assert [int(w[-1]) for w in windows] == [6, 6, 3, 3]
    limited = list(TokenWindows(batches, accumulate=3, limit=lambda: 2))
    assert [int(w[-1]) for w in limited] == [6, 6]  # an epoch cut short: only what it trains on
