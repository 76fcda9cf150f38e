"""Residual networks (He et al. 2016) in plain torch, sized from the data they read.

`depth` names the network of the paper: 20/32/44/56/110 are the CIFAR family (§4.2:
6n+2 layers, three stages of n basic blocks, widths 16/32/64), 18/34 the ImageNet
family with basic blocks and 50/101/152 with bottleneck blocks (four stages, widths
64..512, 4× wider outputs in a bottleneck). Modules are named as in torchvision
(`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample`, `fc`), which is not imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError

CIFAR_DEPTHS = (20, 32, 44, 56, 110)
# depth → (block, blocks a stage) of the ImageNet family (He et al. 2016, table 1)
IMAGENET_LAYOUTS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
CIFAR_WIDTHS = (16, 32, 64)
IMAGENET_WIDTHS = (64, 128, 256, 512)
SMALL_IMAGE = 64  # stem="auto": a shorter side up to this gets the 3×3 stem, no pooling


def _depths(block: str | None = None) -> str:
    """`20|32|44|56|110|18|34|50|101|152`, or those a block type makes."""
    names = [(d, "basic") for d in CIFAR_DEPTHS] + [
        (d, b) for d, (b, _) in IMAGENET_LAYOUTS.items()
    ]
    return "|".join(str(d) for d, b in names if block in (None, b))


class BasicBlock(nn.Module):
    """relu(bn(conv3×3(relu(bn(conv3×3(x))))) + shortcut(x)): two 3×3 convolutions, the
    first with the stride."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, width, stride)

    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    """1×1 down to `width`, 3×3 (with the stride, as torchvision's "v1.5" places it), 1×1
    up to 4·`width`, plus the shortcut: deep networks at the cost of shallow ones."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """The identity where shapes agree, else a 1×1 conv + BN projection (the paper's
    option B; option A's zero-padding has no parameters but discards the extra channels'
    share of the input). An identity shortcut is what keeps very deep nets trainable."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
    )


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


class ResNet(nn.Module):
    """stem → stages of residual blocks (each stage after the first halves the size and
    doubles the width) → global average pool → linear to `num_classes`.

    The stem is a 3×3 stride-1 conv without pooling for small images (`stem="cifar"`, or
    `"auto"` when the shorter side is ≤ 64 px), else the 7×7 stride-2 conv and 3×3
    max-pool (`"imagenet"`) that shrink the image 4-fold before the first stage. The
    pool makes the classifier independent of the image size, so any size at least the
    network's total downsampling works.
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        num_classes: int,
        depth: int = 20,
        block: str = "basic",
        widths: Sequence[int] | None = None,
        stem: str = "auto",
        zero_init_residual: bool = True,
    ) -> None:
        super().__init__()
        for key, value in (("in_channels", in_channels), ("height", height),
                           ("width", width), ("num_classes", num_classes)):  # fmt: skip
            if not checks.is_positive_int(value):
                raise ConfigError(
                    f"model.{key} must be a positive integer, got {checks.show(value)}; "
                    "leave it null (it is read from the data)"
                )
        block = checks.one_of(block, "model.block", tuple(BLOCKS))
        stem = checks.one_of(stem, "model.stem", ("auto", "cifar", "imagenet"))
        zero_init_residual = checks.boolean(zero_init_residual, "model.zero_init_residual")
        blocks, default_widths = _layout(depth, block)
        widths = _widths(widths, default_widths, depth)
        if stem == "auto":
            stem = "cifar" if min(height, width) <= SMALL_IMAGE else "imagenet"
        _check_size(height, width, depth, stem, len(blocks))

        self.depth, self.stem = depth, stem  # `stem`: what "auto" chose
        self.conv1 = (
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
            if stem == "cifar"
            else nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
        )
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if stem == "cifar" else nn.MaxPool2d(3, 2, 1)
        kind = BLOCKS[block]
        previous = widths[0]
        for i, (count, stage_width) in enumerate(zip(blocks, widths, strict=True)):
            stage = []
            for j in range(count):
                stage.append(kind(previous, stage_width, 2 if (i > 0 and j == 0) else 1))
                previous = stage_width * kind.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        self.num_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(previous, num_classes)
        self._initialise(zero_init_residual)

    def _initialise(self, zero_init_residual: bool) -> None:
        """He (Kaiming) normal init for the convolutions, fan-out as in the paper and
        torchvision; every BN starts as the identity (weight 1, bias 0).

        With `zero_init_residual`, the last BN of every residual branch starts at weight 0,
        so each block starts as its shortcut (the identity where shapes agree): the deep
        network begins as a shallow one and the signal and its gradient pass unchanged
        through every block, which lets large batches train at high learning rates
        (Goyal et al. 2017, "Accurate, large minibatch SGD", §5.1).
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock | Bottleneck):
                    nn.init.zeros_(module.last_norm().weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def _layout(depth: object, block: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(blocks a stage, default widths) for `depth`, or one line naming the valid depths."""
    valid = isinstance(depth, Integral) and not isinstance(depth, bool)
    if not valid or depth not in (*CIFAR_DEPTHS, *IMAGENET_LAYOUTS):
        raise ConfigError(
            f"model.depth={checks.show(depth)} is not a ResNet depth; choose one of "
            f"{'|'.join(map(str, CIFAR_DEPTHS))} (CIFAR family, basic blocks) or "
            f"{'|'.join(map(str, IMAGENET_LAYOUTS))} (ImageNet family), e.g. model.depth=20"
        )
    depth = int(depth)
    if depth in CIFAR_DEPTHS:
        wanted, blocks, widths = "basic", ((depth - 2) // 6,) * 3, CIFAR_WIDTHS
    else:
        wanted, blocks = IMAGENET_LAYOUTS[depth]
        widths = IMAGENET_WIDTHS
    if block != wanted:
        raise ConfigError(
            f"model.depth={depth} is built from {wanted} blocks, not model.block={block}; "
            f"set model.block={wanted}, or a depth {block} blocks make: "
            f"model.depth={_depths(block)}"
        )
    return blocks, widths


def _widths(widths: object, default: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """The stage widths given (one a stage, positive), or the paper's."""
    if widths is None:
        return default
    ok = isinstance(widths, Sequence) and not isinstance(widths, str)
    if not ok or len(widths) != len(default) or not all(map(checks.is_positive_int, widths)):
        shown = checks.typed_list(widths) if ok else repr(widths)
        raise ConfigError(
            f"model.widths={shown} must be {len(default)} positive integers for "
            f"model.depth={depth} (one a stage); e.g. model.widths={checks.typed_list(default)}"
        )
    return tuple(int(w) for w in widths)


def _check_size(height: int, width: int, depth: int, stem: str, stages: int) -> None:
    """Refuse images smaller than the network's total downsampling: past that, the last
    stages' stride-2 convolutions see one pixel padded with zeros."""
    shrink = (1 if stem == "cifar" else 4) * 2 ** (stages - 1)
    if min(height, width) >= shrink:
        return
    if stem == "imagenet" and min(height, width) >= 2 ** (stages - 1):
        fix = f"use model.stem=cifar (3×3, no pooling: {2 ** (stages - 1)}-fold)"
    elif min(height, width) >= 2 ** (len(CIFAR_WIDTHS) - 1):
        fix = "use model.depth=20 and model.stem=cifar (4-fold)"
    else:
        fix = "use a model without downsampling, e.g. model=mlp"
    raise ConfigError(
        f"model.depth={depth} with the {stem} stem shrinks images {shrink}-fold, so it needs "
        f"at least {shrink}×{shrink}, but the data has {height}×{width}; {fix}"
    )
