"""Small, fast networks for the smoke and cpu profiles (2-core CPUs)."""

from __future__ import annotations

from torch import Tensor, nn

from advtui.models.registry import register_model


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


@register_model("small_cnn")
def small_cnn(img_size: int) -> tuple[nn.Module, int]:
    """Three stride-2 3x3 conv layers (32-64-128 channels, BN, ReLU) and global average pooling.

    The prototype net of DESIGN section 7: thousands of images/s on 2 cores, and the global pool lets
    it find a tiled (shift-repeated) pattern anywhere in the image. Works at any ``img_size``.
    """
    backbone = nn.Sequential(
        _conv_bn_relu(3, 32, 2),
        _conv_bn_relu(32, 64, 2),
        _conv_bn_relu(64, 128, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return backbone, 128


class _BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut, as in ResNet-18."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(c_in, c_out, stride)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn2(self.conv2(self.conv1(x))) + self.shortcut(x))


@register_model("small_resnet")
def small_resnet(img_size: int) -> tuple[nn.Module, int]:
    """A narrow ResNet for the cpu profile: 3x3 stem (32 ch), one basic block per stage at 32-64-128
    channels (strides 1, 2, 2; a stride-2 stem above 32 px), global average pooling."""
    stem_stride = 1 if img_size < 64 else 2
    backbone = nn.Sequential(
        _conv_bn_relu(3, 32, stem_stride),
        _BasicBlock(32, 32, 1),
        _BasicBlock(32, 64, 2),
        _BasicBlock(64, 128, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return backbone, 128


@register_model("small_mlp")
def small_mlp(img_size: int) -> tuple[nn.Module, int]:
    """Two hidden layers of 256 units on the flattened pixels (no convolution, no pooling): an architecture with
    another inductive bias for E12's learnability-vs-transferability plot, cheap on a CPU. It sees every pixel at
    its position, so a fixed (not shifted) planted pattern is as easy for it to read as for a CNN."""
    backbone = nn.Sequential(
        nn.Flatten(),
        nn.Linear(3 * img_size * img_size, 256),
        nn.ReLU(inplace=True),
        nn.Linear(256, 256),
        nn.ReLU(inplace=True),
    )
    return backbone, 256
