"""Tic-tac-toe solved exactly (data/tictactoe.py) and AlphaZero's two-head objective fitted
to it (task=policy_value, experiment=tictactoe_policy_value).

The truths held against the code are its own: the legal positions by the rules of the game
(stone counts and who may have won), the published counts of tic-tac-toe's positions (5,478
legal; 958 finished: 626 won by X, 316 by O, 16 drawn), negamax's equation checked at every
position with the game's ends judged here, and positions worked by hand. The trained
network is judged against the solver's table and by playing it against every opponent.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from objectives.data import tictactoe as ttt
from objectives.losses.policy_value import policy_cross_entropy
from objectives.run.assemble import assemble
from objectives.run.restore import restore
from objectives.run.train import train
from objectives.tasks.policy_value import PolicyValueModule
from tests.conftest import NO_PROGRESS_BAR, config_error_of

# the game's ends judged here, not by the module: rows, columns and diagonals of a 3×3 grid
GRID = [[3 * r + c for c in range(3)] for r in range(3)]
LINES = [*GRID, *map(list, zip(*GRID, strict=True)), [0, 4, 8], [2, 4, 6]]


def lines_of(board: tuple[int, ...], player: int) -> int:
    return sum(all(board[i] == player for i in line) for line in LINES)


def board(text: str) -> tuple[int, ...]:
    """`"XX. OO. ..."`: rows of X, O and . (empty), spaces ignored."""
    cells = text.replace(" ", "")
    assert len(cells) == 9
    return tuple({".": 0, "X": 1, "O": 2}[c] for c in cells)


def placed(b: tuple[int, ...], cell: int, stone: int) -> tuple[int, ...]:
    return (*b[:cell], stone, *b[cell + 1 :])


def legal_by_the_rules(cells: tuple[int, ...]) -> bool:
    """X moves first and no one moves after a win: X has as many stones as O or one more,
    and whoever has a line made the last move (so not both)."""
    xs, os = cells.count(1), cells.count(2)
    x_won, o_won = lines_of(cells, 1) > 0, lines_of(cells, 2) > 0
    if xs - os not in (0, 1) or (x_won and o_won):
        return False
    return not (x_won and xs != os + 1) and not (o_won and xs != os)


# -- (a) the solver -----------------------------------------------------------------------------
def test_the_positions_are_exactly_the_5478_legal_boards() -> None:
    positions = ttt.positions()
    assert len(positions) == 5478 == len(set(positions))
    assert positions[0] == ttt.EMPTY_BOARD
    legal = {b for b in itertools.product((0, 1, 2), repeat=9) if legal_by_the_rules(b)}
    assert set(positions) == legal


def test_958_finished_games_626_won_by_x_316_by_o_16_drawn() -> None:
    finished = {"X": 0, "O": 0, "draw": 0}
    for b in ttt.positions():
        x_line, o_line = lines_of(b, 1), lines_of(b, 2)
        if x_line or o_line or 0 not in b:
            finished["X" if x_line else "O" if o_line else "draw"] += 1
        assert ttt.is_terminal(b) == bool(x_line or o_line or 0 not in b)
    assert finished == {"X": 626, "O": 316, "draw": 16}


def test_every_value_satisfies_negamax_with_the_ends_judged_here() -> None:
    """On a finite game the values that are −1 where the mover has lost, 0 on a full board
    and max over moves of −(the next position's value) elsewhere are unique: the minimax
    values. The optimal moves are those reaching that maximum."""
    for b in ttt.positions():
        mover = 1 if b.count(1) == b.count(2) else 2
        value, best = ttt.solve(b)
        if lines_of(b, 3 - mover):
            assert (value, best) == (-1, frozenset()), b
            continue
        empty = [i for i in range(9) if b[i] == 0]
        if not empty:
            assert (value, best) == (0, frozenset()), b
            continue
        worth = {m: -ttt.solve(placed(b, m, mover))[0] for m in empty}
        assert value == max(worth.values()), b
        assert best == {m for m, w in worth.items() if w == value}, b


@pytest.mark.parametrize(
    ("text", "value", "best"),
    [
        # every first move draws
        ("... ... ...", 0, set(range(9))),
        # against the centre, O must take a corner: an edge loses
        ("... .X. ...", 0, {0, 2, 6, 8}),
        # against a corner, only the centre holds
        ("X.. ... ...", 0, {4}),
        # X completes the top row; any other move lets O complete the middle row or draw
        ("XX. OO. ...", 1, {2}),
        # O to move against two open lines of X (cells 1 and 5): every move loses
        ("X.X .O. O.X", -1, {1, 3, 5, 7}),
        # the game is over: X has the top row, O (to move) has lost
        ("XXX OO. ...", -1, set()),
        # a full board without a line: a draw
        ("XOX XOO OXX", 0, set()),
    ],
)
def test_positions_worked_by_hand(text: str, value: int, best: set[int]) -> None:
    b = board(text)
    assert b in set(ttt.positions())
    assert ttt.solve(b) == (value, best)


def test_the_data_from_the_movers_view_with_its_targets() -> None:
    inputs, targets = ttt.source()
    assert inputs.shape == (5478, 27) and targets.shape == (5478, 19)
    index = {b: i for i, b in enumerate(ttt.positions())}
    # O to move: O's stones are "own", X's the opponent's
    row = index[board("X.X .O. O.X")]
    own, other, empty = inputs[row].view(3, 9).tolist()
    assert own == [0, 0, 0, 0, 1, 0, 1, 0, 0]
    assert other == [1, 0, 1, 0, 0, 0, 0, 0, 1]
    assert empty == [0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert targets[row, :9].tolist() == [0, 0.25, 0, 0.25, 0, 0.25, 0, 0.25, 0]
    assert targets[row, 9] == -1
    assert targets[row, 10:].tolist() == empty
    # a finished game: a value, no policy target, no legal move
    row = index[board("XXX OO. ...")]
    assert targets[row, :9].sum() == 0 and targets[row, 9] == -1 and targets[row, 10:].sum() == 0
    # every policy target with one sums to 1, and only on legal moves
    rows = targets[:, :9].sum(-1)
    assert int((rows > 0).sum()) == 5478 - 958
    assert torch.allclose(rows[rows > 0], torch.ones(5478 - 958))
    assert not (targets[:, :9] > 0)[targets[:, 10:] == 0].any()


def test_the_policy_loss_leaves_finished_games_out_of_its_mean() -> None:
    logits = torch.tensor([[1.0, 2.0, -1.0e9], [-1.0e9, -1.0e9, -1.0e9]])
    target = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    log_p = torch.log_softmax(torch.tensor([1.0, 2.0]), 0)
    expected = -(0.5 * log_p[0] + 0.5 * log_p[1])  # the first row alone, by hand
    assert policy_cross_entropy(logits, target) == pytest.approx(float(expected))
    assert policy_cross_entropy(logits[1:], target[1:]) == 0


# -- (b) the whole recipe -------------------------------------------------------------------------
def never_loses(move_of: dict[tuple[int, ...], int], player: int) -> bool:
    """Whether the greedy policy `move_of`, playing `player` from the empty board, avoids a
    loss against every sequence of opponent moves (all replies tried)."""

    def safe(b: tuple[int, ...]) -> bool:
        if lines_of(b, 3 - player):
            return False
        if lines_of(b, player) or 0 not in b:
            return True
        mover = 1 if b.count(1) == b.count(2) else 2
        if mover == player:
            m = move_of[b]
            assert b[m] == 0, f"illegal move {m} in {b}"
            return safe(placed(b, m, player))
        return all(safe(placed(b, m, mover)) for m in range(9) if b[m] == 0)

    return safe(ttt.EMPTY_BOARD)


def test_the_recipe_fits_the_minimax_table_and_never_loses(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("experiment=tictactoe_policy_value", *NO_PROGRESS_BAR, fast=False)
    metrics = train(cfg)
    best = sorted((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    assert best
    network = restore(str(best[-1])).module.model
    positions = ttt.positions()
    with torch.no_grad():
        logits, value = network(ttt.encode_boards(positions))
    truth = torch.tensor([float(ttt.solve(b)[0]) for b in positions])
    mse = float((value - truth).square().mean())
    assert mse < 0.01
    assert metrics["test/value_mse"] == pytest.approx(mse, rel=1e-4, abs=1e-6)
    # the greedy move among the legal ones: an optimal one everywhere the game goes on
    legal = torch.tensor([[b[i] == 0 and not ttt.is_terminal(b) for i in range(9)]
                          for b in positions])  # fmt: skip
    moves = logits.masked_fill(~legal, float("-inf")).argmax(-1).tolist()
    going_on = [i for i, b in enumerate(positions) if not ttt.is_terminal(b)]
    optimal = sum(moves[i] in ttt.solve(positions[i])[1] for i in going_on) / len(going_on)
    assert metrics["test/policy_acc"] == pytest.approx(optimal, abs=1e-6)
    move_of = {positions[i]: moves[i] for i in going_on}
    assert never_loses(move_of, player=1)  # as X
    assert never_loses(move_of, player=2)  # as O


# -- (c) refusals -------------------------------------------------------------------------------
def test_data_without_moves_is_refused(compose_cfg) -> None:
    message = config_error_of(
        lambda: assemble(compose_cfg("task=policy_value", "loss=[policy_ce,value]"))
    )
    assert "needs num_actions, which the data does not provide" in message


def test_data_that_is_not_labelled_positions_is_refused(compose_cfg) -> None:
    cfg = compose_cfg("experiment=tictactoe_policy_value", "data=gym", "rl.env=CartPole-v1",
                      "trainer.max_epochs=1")  # fmt: skip
    message = config_error_of(lambda: train(cfg))
    assert message == (
        "data 'gym' is made for task=rl, not task=policy_value; choose task=rl, "
        "or data made for task=policy_value: data=tictactoe"
    )


def test_a_network_without_a_policy_and_a_value_head_is_refused(compose_cfg) -> None:
    parts = assemble(compose_cfg("experiment=tictactoe_policy_value"))
    objective = parts.module.objective
    message = config_error_of(
        lambda: PolicyValueModule(torch.nn.Linear(27, 9), objective, num_actions=9)
    )
    assert "model=actor_critic" in message


@pytest.mark.parametrize(
    ("override", "phrase"),
    [
        ("data.batch_size=0", "data.batch_size must be a positive integer"),
        ("loss=mse", "loss=policy_ce|"),
    ],
)
def test_bad_settings_are_one_line(compose_cfg, override: str, phrase: str) -> None:
    message = config_error_of(
        lambda: assemble(compose_cfg("experiment=tictactoe_policy_value", override))
    )
    assert phrase in message
