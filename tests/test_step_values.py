"""Per-step values reach the loggers in order, in bursts, and all of them by a flush."""

from __future__ import annotations

import torch

from objectives.tracking.step_values import DeferredStepValues


class Journal:
    """A logger that keeps what it is given."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict]] = []

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.rows.append((step, metrics))


def test_values_wait_for_a_burst_and_keep_their_order() -> None:
    journal = Journal()
    values = DeferredStepValues(["a", "b"], burst=10, max_delay_s=3600)
    for step in range(0, 110, 10):  # 11 pushes
        values.push(step, torch.tensor([step, -step], dtype=torch.float32), [journal])
        if step < 100:
            assert journal.rows == []
    assert [s for s, _ in journal.rows] == list(range(0, 100, 10))  # all but the newest
    assert journal.rows[3] == (30, {"a": 30.0, "b": -30.0})
    values.flush([journal])
    assert [s for s, _ in journal.rows] == list(range(0, 110, 10))
    values.flush([journal])  # nothing twice
    assert len(journal.rows) == 11


def test_a_slow_run_writes_each_value_one_interval_later() -> None:
    journal = Journal()
    values = DeferredStepValues(["a"], burst=10, max_delay_s=0.0)
    for step in range(3):
        values.push(step, torch.tensor([float(step)]), [journal])
        assert [s for s, _ in journal.rows] == list(range(step))


def test_a_value_is_the_one_pushed_even_if_the_tensor_changes_later() -> None:
    journal = Journal()
    values = DeferredStepValues(["a"], burst=10, max_delay_s=3600)
    stacked = torch.tensor([1.0])
    values.push(0, stacked, [journal])
    stacked.add_(5.0)
    values.push(1, torch.tensor([2.0]), [journal])
    values.flush([journal])
    assert journal.rows == [(0, {"a": 1.0}), (1, {"a": 2.0})]
