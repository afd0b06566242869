"""Classic vision architectures written in PyTorch for the import tests: the same
layer structure, channel counts and parameter counts as torchvision's definitions
(written here from the papers' tables; torchvision is not a dependency).

``build(name)`` gives a freshly, deterministically initialised module in eval mode,
with batchnorm statistics far from 0 and 1 so their folding matters.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]


# -- ResNet (He et al. 2015; torchvision's v1.5: the stride on the 3x3 conv) ----------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.body = nn.Sequential(
            *conv_bn(c_in, width, 3, stride), nn.ReLU(), *conv_bn(width, c_out, 3)
        )
        self.down = (
            nn.Sequential(*conv_bn(c_in, c_out, 1, stride))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.down(x))


class Bottleneck(BasicBlock):
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__(c_in, width, stride)
        self.body = nn.Sequential(
            *conv_bn(c_in, width, 1),
            nn.ReLU(),
            *conv_bn(width, width, 3, stride),
            nn.ReLU(),
            *conv_bn(width, width * 4, 1),
        )


def resnet(block: type[BasicBlock], repeats: list[int], classes: int = 1000) -> nn.Module:
    layers: list[nn.Module] = [*conv_bn(3, 64, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c = 64
    for stage, n in enumerate(repeats):
        width = 64 * 2**stage
        for k in range(n):
            layers.append(block(c, width, 2 if k == 0 and stage > 0 else 1))
            c = width * block.expansion
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
    return nn.Sequential(*layers)


# -- VGG-11 (configuration A) ----------------------------------------------------------


def vgg11(divisor: int = 1, classes: int = 1000) -> nn.Module:
    layers: list[nn.Module] = []
    c = 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v) // divisor, 3, padding=1), nn.ReLU()]
            c = int(v) // divisor
    hidden = 4096 // divisor
    layers += [
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Linear(c * 49, hidden),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(hidden, classes),
    ]
    return nn.Sequential(*layers)


# -- MobileNet v2 (Sandler et al. 2018) --------------------------------------------------


def divisible(v: float, by: int = 8) -> int:
    """torchvision's channel rounding: to a multiple of ``by``, never 10% below ``v``."""
    out = max(by, int(v + by / 2) // by * by)
    return out + by if out < 0.9 * v else out


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*conv_bn(c_in, hidden, 1), nn.ReLU6()]
        layers += [*conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6()]
        layers += conv_bn(hidden, c_out, 1)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2(width: float = 1.0, classes: int = 1000) -> nn.Module:
    c = divisible(32 * width)
    last = divisible(1280 * max(1.0, width))
    layers: list[nn.Module] = [*conv_bn(3, c, 3, 2), nn.ReLU6()]
    for t, channels, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        out = divisible(channels * width)
        for k in range(n):
            layers.append(InvertedResidual(c, out, s if k == 0 else 1, t))
            c = out
    layers += [*conv_bn(c, last, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    layers += [nn.Dropout(0.2), nn.Linear(last, classes)]
    return nn.Sequential(*layers)


# -- DenseNet (Huang et al. 2017): pre-activation BN-ReLU-Conv layers ---------------------


class DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, bn_size * growth, 1, bias=False),
            nn.BatchNorm2d(bn_size * growth),
            nn.ReLU(),
            nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.body(torch.cat(features, 1))


class DenseBlock(nn.Module):
    def __init__(self, layers: int, c_in: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(c_in + k * growth, growth, bn_size) for k in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


def densenet(
    blocks: tuple[int, ...] = (6, 12, 24, 16),
    growth: int = 32,
    init: int = 64,
    bn_size: int = 4,
    classes: int = 1000,
) -> nn.Module:
    layers: list[nn.Module] = [
        nn.Conv2d(3, init, 7, 2, 3, bias=False),
        nn.BatchNorm2d(init),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    c = init
    for k, n in enumerate(blocks):
        layers.append(DenseBlock(n, c, growth, bn_size))
        c += n * growth
        if k != len(blocks) - 1:
            layers += [
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.Conv2d(c, c // 2, 1, bias=False),
                nn.AvgPool2d(2, 2),
            ]
            c //= 2
    layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    layers.append(nn.Linear(c, classes))
    return nn.Sequential(*layers)


# -- ShuffleNet v2 (Ma et al. 2018) -------------------------------------------------------


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = c_out // 2
        if stride > 1:
            self.left = nn.Sequential(
                *conv_bn(c_in, c_in, 3, stride, groups=c_in),
                *conv_bn(c_in, half, 1),
                nn.ReLU(),
            )
        right_in = c_in if stride > 1 else half
        self.right = nn.Sequential(
            *conv_bn(right_in, half, 1),
            nn.ReLU(),
            *conv_bn(half, half, 3, stride, groups=half),
            *conv_bn(half, half, 1),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.right(b)), 1)
        else:
            out = torch.cat((self.left(x), self.right(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(
        self, channels: tuple[int, ...] = (24, 48, 96, 192, 1024), classes: int = 1000
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [*conv_bn(3, channels[0], 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        c = channels[0]
        for repeats, out in zip((4, 8, 4), channels[1:4], strict=True):
            layers += [ShuffleUnit(c, out, 2)] + [
                ShuffleUnit(out, out, 1) for _ in range(repeats - 1)
            ]
            c = out
        layers += [*conv_bn(c, channels[4], 1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels[4], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean([2, 3]))


# -- U-Net (Ronneberger et al. 2015), small: padded convs, transposed-conv upsampling ----


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(*conv_bn(c_in, c_out, 3), nn.ReLU(), *conv_bn(c_out, c_out, 3), nn.ReLU())


class UNet(nn.Module):
    def __init__(self, c_in: int = 3, classes: int = 2, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        widths = [base * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList(
            double_conv(a, b) for a, b in zip([c_in, *widths[:-2]], widths[:-1], strict=True)
        )
        self.bottom = double_conv(widths[-2], widths[-1])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[k + 1], widths[k], 2, 2) for k in reversed(range(depth))
        )
        self.merge = nn.ModuleList(
            double_conv(2 * widths[k], widths[k]) for k in reversed(range(depth))
        )
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Conv2d(base, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat((skip, up(x)), 1))
        return self.head(x)


# -- the table -----------------------------------------------------------------------


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": lambda **k: resnet(BasicBlock, [2, 2, 2, 2], **k),
    "resnet50": lambda **k: resnet(Bottleneck, [3, 4, 6, 3], **k),
    "vgg11": vgg11,
    "mobilenet_v2": mobilenet_v2,
    "densenet121": densenet,
    "shufflenet_v2_x0_5": ShuffleNetV2,
    "unet": UNet,
}


def build(name: str, **options: Any) -> nn.Module:
    """``name`` from :data:`ARCHITECTURES`, seeded, with spread batchnorm statistics."""
    torch.manual_seed(0)
    module = ARCHITECTURES[name](**options)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.uniform_(-0.5, 0.5, generator=generator)
                m.running_var.uniform_(0.5, 2.0, generator=generator)
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.uniform_(-0.5, 0.5, generator=generator)
    return module.eval()


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def folded_parameter_count(module: nn.Module) -> int:
    """The count once the exporter folds each batchnorm that directly follows a
    bias-free conv into it: the batchnorm's scale and shift (2C) become the conv's
    bias (C). A batchnorm after anything else stays, with its 2C."""
    count = parameter_count(module)
    for seq in module.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq)
        for before, after in itertools.pairwise(children):
            if isinstance(before, nn.Conv2d) and isinstance(after, nn.BatchNorm2d):
                assert before.bias is None
                count -= after.num_features
    return count
