"""Networks. Torch's own layers are used directly where they suffice (`torch.nn.Linear`)."""

from objectives.models.build import build_model
from objectives.models.mlp import MLP

__all__ = ["MLP", "build_model"]
