"""ResNet against independent truths: torchvision's parameter counts, the paper's CIFAR
layout counted by hand, the identity a zero-initialised block must be, and training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from objectives.models import ResNet
from objectives.models.resnet import BasicBlock, Bottleneck
from objectives.run.assemble import assemble
from tests.conftest import config_error_of


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# -- parameter counts ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("depth", "block", "expected"),
    [  # torchvision.models.resnet{18,34,50}(num_classes=1000), as its docs and code count them
        (18, "basic", 11_689_512),
        (34, "basic", 21_797_672),
        (50, "bottleneck", 25_557_032),
    ],
)
def test_imagenet_family_has_torchvisions_parameter_counts(depth, block, expected) -> None:
    assert count(ResNet(3, 224, 224, 1000, depth=depth, block=block)) == expected


def test_cifar_resnet20_has_the_papers_layout_with_projection_shortcuts() -> None:
    def conv(k: int, c_in: int, c_out: int) -> int:  # no bias: a BN follows
        return k * k * c_in * c_out

    def bn(c: int) -> int:
        return 2 * c

    def basic(c_in: int, c_out: int) -> int:
        projection = conv(1, c_in, c_out) + bn(c_out) if c_in != c_out else 0
        return conv(3, c_in, c_out) + bn(c_out) + conv(3, c_out, c_out) + bn(c_out) + projection

    n, widths, classes = 3, (16, 32, 64), 10  # depth 6n + 2 = 20
    expected = conv(3, 3, 16) + bn(16)  # the 3×3 stem
    previous = 16
    for w in widths:
        expected += basic(previous, w) + (n - 1) * basic(w, w)
        previous = w
    expected += 64 * classes + classes
    net = ResNet(3, 32, 32, classes, depth=20)
    assert count(net) == expected == 272_474
    assert round(count(net) / 1e6, 2) == 0.27  # "0.27M" in He et al. 2016, table 6
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == 20  # weighted layers: 19 3×3 convs and the linear layer


# -- shapes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "depth", "block", "stem"),
    [
        (8, 20, "basic", "cifar"),
        (8, 18, "basic", "cifar"),  # auto: small images keep their size in the stem
        (32, 20, "basic", "cifar"),
        (32, 50, "bottleneck", "cifar"),
        (224, 18, "basic", "imagenet"),  # auto: large images get the 7×7 stem and max-pool
    ],
)
def test_output_is_batch_by_classes_for_any_image_size(size, depth, block, stem) -> None:
    net = ResNet(3, size, size, 7, depth=depth, block=block).eval()
    assert net.stem == stem
    with torch.no_grad():
        assert net(torch.randn(2, 3, size, size)).shape == (2, 7)


def test_the_stem_can_be_chosen_and_non_square_images_work() -> None:
    net = ResNet(1, 64, 96, 5, depth=18, stem="imagenet").eval()
    assert isinstance(net.maxpool, nn.MaxPool2d) and net.conv1.kernel_size == (7, 7)
    with torch.no_grad():
        assert net(torch.randn(1, 1, 64, 96)).shape == (1, 5)
    assert ResNet(1, 8, 8, 5, depth=20, widths=[4, 8, 12]).fc.in_features == 12


# -- the skip connection ---------------------------------------------------------------------
def block_maps(
    net: nn.Module, x: torch.Tensor
) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    """(block, its input, its output) for every residual block of one forward pass."""
    seen = []
    hooks = [
        m.register_forward_hook(lambda m, args, out: seen.append((m, args[0].clone(), out.clone())))
        for m in net.modules()
        if isinstance(m, BasicBlock | Bottleneck)
    ]
    with torch.no_grad():
        net(x)
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize(
    ("depth", "block", "identities"), [(20, "basic", 7), (50, "bottleneck", 12)]
)
def test_zero_init_makes_every_stride_one_block_the_identity(depth, block, identities) -> None:
    """A zero last BN leaves relu(0 + x) = x (x ≥ 0 after a ReLU): only the skip carries x."""
    net = ResNet(3, 16, 16, 10, depth=depth, block=block).eval()
    maps = block_maps(net, torch.randn(2, 3, 16, 16))
    kept = [(i, o) for m, i, o in maps if isinstance(m.downsample, nn.Identity)]
    assert len(kept) == identities  # the blocks whose shapes agree: all but the first a stage
    for x, y in kept:
        assert x.abs().sum() > 0 and torch.equal(x, y)


def test_without_zero_init_the_branch_adds_to_the_skip() -> None:
    net = ResNet(3, 16, 16, 10, depth=20, zero_init_residual=False).eval()
    for block, x, y in block_maps(net, torch.randn(2, 3, 16, 16)):
        branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
        assert not torch.equal(x, y) or not isinstance(block.downsample, nn.Identity)
        assert torch.allclose(y, torch.relu(branch + block.downsample(x)), atol=1e-6)


def test_initialisation_is_kaiming_for_convs_and_identity_for_norms() -> None:
    torch.manual_seed(0)
    net = ResNet(3, 32, 32, 10, depth=56, zero_init_residual=False)
    conv = net.layer3[1].conv1  # 64 → 64, 3×3: fan-out 576, std √(2/576)
    assert conv.weight.std().item() == pytest.approx((2 / 576) ** 0.5, rel=0.05)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)


# -- refusals --------------------------------------------------------------------------------
def test_a_depth_that_is_no_resnet_lists_the_valid_ones() -> None:
    text = config_error_of(lambda: ResNet(3, 32, 32, 10, depth=19))
    assert text == (
        "model.depth=19 is not a ResNet depth; choose one of 20|32|44|56|110 (CIFAR family, "
        "basic blocks) or 18|34|50|101|152 (ImageNet family), e.g. model.depth=20"
    )
    text = config_error_of(lambda: ResNet(3, 32, 32, 10, depth=50))
    assert text == (
        "model.depth=50 is built from bottleneck blocks, not model.block=basic; set "
        "model.block=bottleneck, or a depth basic blocks make: model.depth=20|32|44|56|110|18|34"
    )
    assert "model.widths=[16,32,64]" in config_error_of(lambda: ResNet(3, 8, 8, 2, widths=[16]))
    assert "model.stem must be one of" in config_error_of(lambda: ResNet(3, 8, 8, 2, stem="big"))


def test_images_too_small_for_the_downsampling_are_refused_with_a_fix() -> None:
    text = config_error_of(lambda: ResNet(1, 8, 8, 10, depth=18, stem="imagenet"))
    assert text == (
        "model.depth=18 with the imagenet stem shrinks images 32-fold, so it needs at least "
        "32×32, but the data has 8×8; use model.stem=cifar (3×3, no pooling: 8-fold)"
    )
    text = config_error_of(lambda: ResNet(1, 4, 6, 10, depth=34))
    assert text.endswith("needs at least 8×8, but the data has 4×6; use model.depth=20 and "
                         "model.stem=cifar (4-fold)")  # fmt: skip
    assert config_error_of(lambda: ResNet(1, 2, 2, 10)).endswith("e.g. model=mlp")


# -- training and the config -----------------------------------------------------------------
def test_a_few_sgd_steps_lower_the_cross_entropy() -> None:
    torch.manual_seed(0)
    net = ResNet(3, 8, 8, 4, depth=20, widths=[8, 16, 32])
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_model_resnet_composes_and_builds_from_the_digits(compose_cfg) -> None:
    cfg = compose_cfg("task=classification", "data=digits", "model=resnet", "loss=cross_entropy")
    parts = assemble(cfg)
    net = parts.module.model
    assert isinstance(net, ResNet) and net.depth == 20 and net.stem == "cifar"
    assert net.conv1.in_channels == 1 and net.fc.out_features == 10
    parts.datamodule.setup("fit")
    x, y = next(iter(parts.datamodule.train_dataloader()))
    assert net(x).shape == (len(y), 10)
    text = config_error_of(
        lambda: assemble(compose_cfg("task=classification", "data=digits", "model=resnet",
                                     "loss=cross_entropy", "model.stem=imagenet"))
    )  # fmt: skip
    assert "the data has 8×8; use model.stem=cifar" in text
