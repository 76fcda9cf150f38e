"""Networks. Torch's own layers are used directly where they suffice (`torch.nn.Linear`)."""

from objectives.models.cnn import CNN
from objectives.models.gan import GANNetworks
from objectives.models.mlp import MLP
from objectives.models.resnet import ResNet

__all__ = ["CNN", "MLP", "GANNetworks", "ResNet"]
