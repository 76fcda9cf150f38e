"""Step methods carry their signature, for Lightning's per-batch inspection, in every task."""

from __future__ import annotations

from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature

from objectives.tasks import ClassificationModule, ContrastiveModule, GANModule, RegressionModule
from objectives.tasks.base import STEP_METHODS


class MyTask(RegressionModule):
    """A user's task overriding a step method: it gets the stored signature too."""

    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx)


def test_every_task_stores_the_signature_of_its_own_step_methods() -> None:
    for task in (RegressionModule, ClassificationModule, ContrastiveModule, GANModule, MyTask):
        for name in STEP_METHODS:
            method = getattr(task, name)
            stored = vars(method).get("__signature__")  # set on the function itself
            assert stored is not None, f"{task.__name__}.{name}"
            assert list(stored.parameters) == ["self", "batch", "batch_idx"]
            assert is_param_in_hook_signature(method, "batch_idx", min_args=2)
