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


def conv_bn(
    c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, eps: float = 1e-5
) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=eps),
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


def resnet(
    block: type[BasicBlock],
    repeats: list[int],
    classes: int = 1000,
    base: int = 64,
    channels: int = 3,
) -> nn.Module:
    """``channels``: of the input image (1 for grey levels such as the digits)."""
    layers: list[nn.Module] = [*conv_bn(channels, base, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c = base
    for stage, n in enumerate(repeats):
        width = base * 2**stage
        for k in range(n):
            layers.append(block(c, width, 2 if k == 0 and stage > 0 else 1))
            c = width * block.expansion
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
    return nn.Sequential(*layers)


# -- VGG-11 (configuration A) ----------------------------------------------------------


def vgg11(divisor: int = 1, classes: int = 1000, pool: int = 7) -> nn.Module:
    """``pool``: the adaptive pool's output size (7; the exporter writes it as a fixed
    pool only where it divides the input's, so a 32x32 input needs 1)."""
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
        nn.AdaptiveAvgPool2d(pool),
        nn.Flatten(),
        nn.Linear(c * pool * pool, hidden),
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


# -- ShuffleNet v2 (Ma et al. 2018), 1.0x by default ----------------------------------


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
        self, channels: tuple[int, ...] = (24, 116, 232, 464, 1024), classes: int = 1000
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


# -- SqueezeNet 1.1 (Iandola et al. 2016; the 1.1 revision's 3x3 stem) -------------------


class Fire(nn.Module):
    def __init__(self, c_in: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(c_in, squeeze, 1), nn.ReLU())
        self.expand1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.expand3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)
        return torch.cat((self.expand1(x), self.expand3(x)), 1)


def squeezenet1_1(divisor: int = 1, classes: int = 1000) -> nn.Module:
    """``divisor`` divides every channel count (the suite's smaller widths)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64 // divisor, 3, 2), nn.ReLU()]
    c = 64 // divisor
    for v in ("M", 16, 16, "M", 32, 32, "M", 48, 48, 64, 64):
        if v == "M":
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        else:
            squeeze = int(v) // divisor
            layers.append(Fire(c, squeeze, 4 * squeeze))
            c = 8 * squeeze
    layers += [nn.Dropout(0.5), nn.Conv2d(c, classes, 1), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


# -- MobileNet v3-small (Howard et al. 2019) and EfficientNet-B0 (Tan and Le 2019):
#    inverted residuals with squeeze-and-excitation -----------------------------------


class SqueezeExcite(nn.Module):
    """x times a per-channel gate: global average, 1x1 conv, activation, 1x1 conv, gate."""

    def __init__(self, c: int, squeeze: int, act: type[nn.Module], gate: type[nn.Module]) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(c, squeeze, 1),
            act(),
            nn.Conv2d(squeeze, c, 1),
            gate(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.body(x)


class MBConv(nn.Module):
    """Expand (1x1), depthwise k x k, optional squeeze-excite, project (1x1)."""

    def __init__(
        self,
        c_in: int,
        k: int,
        hidden: int,
        c_out: int,
        stride: int,
        act: type[nn.Module],
        se: SqueezeExcite | None,
        eps: float,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if hidden != c_in:
            layers.append(nn.Sequential(*conv_bn(c_in, hidden, 1, eps=eps), act()))
        layers.append(nn.Sequential(*conv_bn(hidden, hidden, k, stride, hidden, eps=eps), act()))
        if se is not None:
            layers.append(se)
        layers.append(nn.Sequential(*conv_bn(hidden, c_out, 1, eps=eps)))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v3_small(width: float = 1.0, classes: int = 1000) -> nn.Module:
    def ch(c: int) -> int:
        return divisible(c * width)

    eps = 1e-3
    c = ch(16)
    layers: list[nn.Module] = [*conv_bn(3, c, 3, 2, eps=eps), nn.Hardswish()]
    # kernel, expanded, out, squeeze-excite, hardswish (else relu), stride
    for k, hidden, out, se, hs, stride in (
        (3, 16, 16, True, False, 2),
        (3, 72, 24, False, False, 2),
        (3, 88, 24, False, False, 1),
        (5, 96, 40, True, True, 2),
        (5, 240, 40, True, True, 1),
        (5, 240, 40, True, True, 1),
        (5, 120, 48, True, True, 1),
        (5, 144, 48, True, True, 1),
        (5, 288, 96, True, True, 2),
        (5, 576, 96, True, True, 1),
        (5, 576, 96, True, True, 1),
    ):
        hidden, out = ch(hidden), ch(out)
        excite = SqueezeExcite(hidden, divisible(hidden // 4), nn.ReLU, nn.Hardsigmoid)
        act = nn.Hardswish if hs else nn.ReLU
        layers.append(MBConv(c, k, hidden, out, stride, act, excite if se else None, eps))
        c = out
    last = 6 * c
    layers += [*conv_bn(c, last, 1, eps=eps), nn.Hardswish(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    head = ch(1024)
    layers += [nn.Linear(last, head), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(head, classes)]
    return nn.Sequential(*layers)


def efficientnet_b0(width: float = 1.0, classes: int = 1000) -> nn.Module:
    def ch(c: int) -> int:
        return divisible(c * width)

    eps = 1e-5
    c = ch(32)
    layers: list[nn.Module] = [*conv_bn(3, c, 3, 2, eps=eps), nn.SiLU()]
    # expansion, kernel, stride, out, repeats
    for t, k, s, channels, n in (
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
        (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3),
        (6, 5, 2, 192, 4),
        (6, 3, 1, 320, 1),
    ):
        out = ch(channels)
        for r in range(n):
            hidden = divisible(c * t)
            excite = SqueezeExcite(hidden, max(1, c // 4), nn.SiLU, nn.Sigmoid)
            layers.append(MBConv(c, k, hidden, out, s if r == 0 else 1, nn.SiLU, excite, eps))
            c = out
    last = 4 * c
    layers += [*conv_bn(c, last, 1, eps=eps), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers, nn.Dropout(0.2), nn.Linear(last, classes))


# -- GoogLeNet (Szegedy et al. 2014) with batchnorm, as torchvision's: no auxiliary heads,
#    the "5x5" branch a 3x3 conv ----------------------------------------------------------


def basic_conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(*conv_bn(c_in, c_out, k, stride, eps=1e-3), nn.ReLU())


class Inception(nn.Module):
    def __init__(self, c_in: int, c1: int, r3: int, c3: int, r5: int, c5: int, proj: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            (
                basic_conv(c_in, c1, 1),
                nn.Sequential(basic_conv(c_in, r3, 1), basic_conv(r3, c3, 3)),
                nn.Sequential(basic_conv(c_in, r5, 1), basic_conv(r5, c5, 3)),
                nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), basic_conv(c_in, proj, 1)),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


def googlenet(divisor: int = 1, classes: int = 1000) -> nn.Module:
    """``divisor`` divides every channel count (the suite's smaller widths)."""

    def pool() -> nn.Module:
        return nn.MaxPool2d(3, 2, ceil_mode=True)

    def d(*channels: int) -> list[int]:
        return [c // divisor for c in channels]

    layers: list[nn.Module] = [basic_conv(3, *d(64), 7, 2), pool()]
    layers += [basic_conv(*d(64, 64), 1), basic_conv(*d(64, 192), 3), pool()]
    c = 192 // divisor
    for row in (
        (64, 96, 128, 16, 32, 32),
        (128, 128, 192, 32, 96, 64),
        "M",
        (192, 96, 208, 16, 48, 64),
        (160, 112, 224, 24, 64, 64),
        (128, 128, 256, 24, 64, 64),
        (112, 144, 288, 32, 64, 64),
        (256, 160, 320, 32, 128, 128),
        "m",
        (256, 160, 320, 32, 128, 128),
        (384, 192, 384, 48, 128, 128),
    ):
        if row == "M":
            layers.append(pool())
        elif row == "m":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            c1, r3, c3, r5, c5, proj = d(*row)
            layers.append(Inception(c, c1, r3, c3, r5, c5, proj))
            c = c1 + c3 + c5 + proj
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(c, classes)]
    return nn.Sequential(*layers)


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
    "shufflenet_v2": ShuffleNetV2,
    "squeezenet1_1": squeezenet1_1,
    "mobilenet_v3_small": mobilenet_v3_small,
    "efficientnet_b0": efficientnet_b0,
    "googlenet": googlenet,
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
