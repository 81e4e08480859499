"""The papers' architectures from timm/torchvision, adapted to small inputs (never pretrained, no downloads).

timm and torchvision are imported inside the factories: they take about two seconds to import, and every
pipeline stage imports this registry while the smoke profile builds none of these networks.

ImageNet networks shrink a 224 px input 4x in their stem (strided conv + max-pool) before the first stage.
On 32 px images that leaves 1x1 maps long before the last stage, so the usual CIFAR variants drop the
stem's downsampling. One rule covers every architecture here: the stem downsamples by ``_stem_factor``:
1 below 64 px (CIFAR, synthetic), 2 below 128 px (Tiny-ImageNet 64 px), 4 (unchanged ImageNet stem) above,
so the first stage always sees maps of roughly 32-56 px.
"""

from __future__ import annotations

from torch import nn

from advtui.models.registry import register_model


def _stem_factor(img_size: int) -> int:
    if img_size < 64:
        return 1
    return 2 if img_size < 128 else 4


def _conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def _pooled(features: nn.Module) -> nn.Sequential:
    return nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _timm_resnet(name: str, img_size: int) -> tuple[nn.Module, int]:
    import timm

    net = timm.create_model(name, pretrained=False, num_classes=0)
    factor = _stem_factor(img_size)
    if factor < 4:
        net.conv1 = _conv3x3(3, net.conv1.out_channels)
        if factor == 1:
            net.maxpool = nn.Identity()
    return net, net.num_features


@register_model("resnet18")
def resnet18(img_size: int) -> tuple[nn.Module, int]:
    """timm ResNet-18; at 32 px the CIFAR form (3x3 stride-1 stem, no max-pool). 512 features."""
    return _timm_resnet("resnet18", img_size)


@register_model("resnet50")
def resnet50(img_size: int) -> tuple[nn.Module, int]:
    """timm ResNet-50; at 32 px the CIFAR form (3x3 stride-1 stem, no max-pool). 2048 features."""
    return _timm_resnet("resnet50", img_size)


@register_model("densenet121")
def densenet121(img_size: int) -> tuple[nn.Module, int]:
    """timm DenseNet-121; at 32 px a 3x3 stride-1 stem without max-pool. 1024 features."""
    import timm

    net = timm.create_model("densenet121", pretrained=False, num_classes=0)
    factor = _stem_factor(img_size)
    if factor < 4:
        net.features.conv0 = _conv3x3(3, net.features.conv0.out_channels)
        if factor == 1:
            net.features.pool0 = nn.Identity()
    return net, net.num_features


@register_model("vgg16")
def vgg16(img_size: int) -> tuple[nn.Module, int]:
    """torchvision VGG-16-BN conv stack and global average pooling (the CIFAR VGG: one linear layer on
    512 features instead of the ImageNet 4096-wide MLP, at every size)."""
    # only the conv stack: building the whole vgg16_bn would initialise 120M unused MLP weights
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=True)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return _pooled(features), 512


@register_model("mobilenetv2")
def mobilenetv2(img_size: int) -> tuple[nn.Module, int]:
    """torchvision MobileNetV2; at 32 px the stem conv and the first stride-2 block run at stride 1
    (total stride 8 instead of 32, as in the common CIFAR version). 1280 features."""
    import torchvision

    features = torchvision.models.mobilenet_v2(weights=None).features
    factor = _stem_factor(img_size)
    if factor < 4:
        features[0][0].stride = (1, 1)
        if factor == 1:
            features[2].conv[1][0].stride = (1, 1)
    return _pooled(features), 1280


@register_model("inception_v3")
def inception_v3(img_size: int) -> tuple[nn.Module, int]:
    """torchvision Inception-v3 (no auxiliary head); below 128 px its stem (five convs, two max-pools,
    which need >= 75 px) becomes one 3x3 stride-1 conv to the 192 channels ``Mixed_5b`` expects, plus
    one max-pool at 64 px. Changing the stem, rather than upsampling 32 px images to 75+ px, keeps the
    compute of the usual CIFAR Inception-v3 and adds no interpolated pixels for attacks to go through.
    2048 features."""
    import torchvision
    from torchvision.models.inception import BasicConv2d

    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    factor = _stem_factor(img_size)
    if factor < 4:
        net.Conv2d_1a_3x3 = BasicConv2d(3, 192, kernel_size=3, padding=1)
        nn.init.trunc_normal_(net.Conv2d_1a_3x3.conv.weight, std=0.1, a=-2, b=2)
        for name in ("Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3"):
            setattr(net, name, nn.Identity())
        if factor == 1:
            net.maxpool2 = nn.Identity()
    net.fc = nn.Identity()
    return net, 2048
