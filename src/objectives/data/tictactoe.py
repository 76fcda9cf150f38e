"""Tic-tac-toe solved exactly: every legal position labelled with its minimax value and moves.

A board is a tuple of 9 cells, row by row (cell 3·row + column), each 0 (empty), 1 (X) or
2 (O); X moves first, so the player to move is X when both have as many stones, else O. A
position is terminal when a player has three in a row or the board is full.

`solve(board)` is exact negamax, memoised: the value for the player to move (+1 a win,
0 a draw, −1 a loss under perfect play by both) and the set of optimal moves (those whose
resulting position is worth the most to the mover). `positions()` enumerates the 5,478
positions reachable from the empty board (terminal ones included, none played past a win).

`source()` is those positions as training data, from the player to move's view:
inputs (N, 27), three planes of 9 cells (own stones, opponent's stones, empty), and targets
(N, 19): the policy target (9, uniform over the optimal moves; all zeros on a terminal
position, which has no move), the value (1) and the legal moves (9, 0/1). `TicTacToeData`
serves them: the goal is an exact fit of a known table, so training, validation and test are
all the same 5,478 positions, and the validation and test metrics say how exact the fit is.
"""

from __future__ import annotations

import functools
from typing import Any

import lightning as L
import torch
from torch import Tensor

from objectives import checks
from objectives.data.batches import InMemoryBatches

Board = tuple[int, ...]

EMPTY, CROSS, NOUGHT = 0, 1, 2  # X and O
CELLS = 9
EMPTY_BOARD: Board = (EMPTY,) * CELLS
# the eight lines of three: rows, columns, diagonals
LINES = (
    (0, 1, 2), (3, 4, 5), (6, 7, 8),
    (0, 3, 6), (1, 4, 7), (2, 5, 8),
    (0, 4, 8), (2, 4, 6),
)  # fmt: skip
INPUT_WIDTH = 3 * CELLS


def to_move(board: Board) -> int:
    """X when both have as many stones (X moves first), else O."""
    return CROSS if board.count(CROSS) == board.count(NOUGHT) else NOUGHT


def winner(board: Board) -> int:
    """CROSS (X) or NOUGHT (O) if that player has three in a row, else EMPTY."""
    for a, b, c in LINES:
        if board[a] != EMPTY and board[a] == board[b] == board[c]:
            return board[a]
    return EMPTY


def is_terminal(board: Board) -> bool:
    return winner(board) != EMPTY or EMPTY not in board


def legal_moves(board: Board) -> tuple[int, ...]:
    """The empty cells, none once the game is over."""
    if is_terminal(board):
        return ()
    return tuple(i for i, cell in enumerate(board) if cell == EMPTY)


def play(board: Board, move: int) -> Board:
    """The board after the player to move puts a stone on the empty cell `move`."""
    if board[move] != EMPTY:
        raise ValueError(f"cell {move} of {board} is taken")
    return (*board[:move], to_move(board), *board[move + 1 :])


@functools.cache
def solve(board: Board) -> tuple[int, frozenset[int]]:
    """(value for the player to move, its optimal moves) under perfect play by both.

    A won position was won by the player who just moved: −1 for the one to move; a full
    board without a line is a draw. Elsewhere the value is the best over the moves of minus
    the opponent's value after it (negamax), and the optimal moves are those reaching it.
    """
    if winner(board) != EMPTY:
        return -1, frozenset()
    moves = legal_moves(board)
    if not moves:
        return 0, frozenset()
    worth = {move: -solve(play(board, move))[0] for move in moves}
    best = max(worth.values())
    return best, frozenset(m for m, v in worth.items() if v == best)


@functools.cache
def positions() -> tuple[Board, ...]:
    """Every position reachable from the empty board (X first, no move after a win), in
    breadth-first order: 5,478 of them, the empty board first."""
    seen = {EMPTY_BOARD}
    order = [EMPTY_BOARD]
    frontier = [EMPTY_BOARD]
    while frontier:
        following = []
        for board in frontier:
            for move in legal_moves(board):
                child = play(board, move)
                if child not in seen:
                    seen.add(child)
                    order.append(child)
                    following.append(child)
        frontier = following
    return tuple(order)


def encode(board: Board) -> list[float]:
    """27 numbers from the view of the player to move: own stones, opponent's, empty."""
    me = to_move(board)
    return (
        [float(cell == me) for cell in board]
        + [float(cell not in (EMPTY, me)) for cell in board]
        + [float(cell == EMPTY) for cell in board]
    )


def encode_boards(boards: list[Board] | tuple[Board, ...]) -> Tensor:
    """(N, 27) float inputs of `boards`."""
    return torch.tensor([encode(b) for b in boards], dtype=torch.float32)


def target(board: Board) -> list[float]:
    """19 numbers: the policy target (uniform over the optimal moves; zeros when the game is
    over), the minimax value for the player to move, the legal moves (1 where legal)."""
    value, best = solve(board)
    legal = legal_moves(board)
    policy = [1.0 / len(best) if i in best else 0.0 for i in range(CELLS)]
    return [*policy, float(value), *(float(i in legal) for i in range(CELLS))]


def source() -> tuple[Tensor, Tensor]:
    """(inputs (5478, 27), targets (5478, 19)) of every legal position, in `positions()`'s
    order; see the module's docstring for the columns."""
    boards = positions()
    targets = torch.tensor([target(b) for b in boards], dtype=torch.float32)
    return encode_boards(boards), targets


SPLITS = ("train", "val", "test")


class TicTacToeData(L.LightningDataModule):
    """All 5,478 legal positions, with their minimax labels, as every split.

    Training reads them in shuffled batches of `batch_size` (the last, smaller batch kept:
    every position is trained on every epoch); validation and test read them in one batch,
    so their epoch means are exact means over all positions. `dims`: `in_features` 27 and
    `num_actions` 9, what model=actor_critic is sized by.
    """

    # the task its (position, policy, value) batches are for (run/assemble.py refuses another)
    made_for = "policy_value"

    def __init__(
        self,
        batch_size: int = 256,
        shuffle: bool = True,
        split_seed: int = 0,
        on_device: bool = True,
        name: str = "tictactoe",
    ) -> None:
        super().__init__()
        self.batch_size = checks.positive_int(batch_size, "data.batch_size", example=256)
        self.shuffle = checks.boolean(shuffle, "data.shuffle")
        self.split_seed = checks.integer(split_seed, "data.split_seed", example=0)
        self.on_device = checks.boolean(on_device, "data.on_device")
        self.name = name
        self.data: tuple[Tensor, Tensor] | None = None

    def _load(self) -> tuple[Tensor, Tensor]:
        if self.data is None:
            self.data = source()
        return self.data

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """A split's `(inputs, targets)`: every split is all positions."""
        if name not in SPLITS:
            raise KeyError(name)
        return self._load()

    def split_size(self, name: str) -> int:
        return len(self.split(name)[0])

    @property
    def dims(self) -> dict[str, int]:
        return {"in_features": INPUT_WIDTH, "num_actions": CELLS}

    def setup(self, stage: str | None = None) -> None:
        self._load()
        trainer = self.trainer
        if self.on_device and trainer is not None:
            device = trainer.strategy.root_device
            self.data = tuple(t.to(device) for t in self._load())  # type: ignore[assignment]

    def _batches(self, train: bool) -> InMemoryBatches:
        tensors = self._load()
        trainer = self.trainer
        return InMemoryBatches(
            tensors,
            batch_size=self.batch_size if train else len(tensors[0]),
            shuffle=train and self.shuffle,
            training=train,
            drop_last=False,
            seed=self.split_seed,
            epoch=(lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        """Batches sliced from tensors already on `device` are handed on as they are."""
        if all(isinstance(t, Tensor) and t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def train_dataloader(self) -> InMemoryBatches:
        return self._batches(train=True)

    def val_dataloader(self) -> InMemoryBatches:
        return self._batches(train=False)

    def test_dataloader(self) -> InMemoryBatches:
        return self._batches(train=False)
