"""Masked image modelling (MIM): a masked autoencoder (He et al. 2022) on a timm ViT, as in Li et al. 2023.

Training hides ``mask_ratio`` of the patches of every image (a fresh random subset per image, drawn by
argsort of uniform noise from torch's global RNG), encodes only the visible ones with the ViT, and lets a
light transformer decoder fill in mask tokens; the loss is the mean squared error on the *masked* patches,
of per-patch normalised pixels when ``norm_pix_loss`` is on (MAE's best setting on ImageNet) or of the
pixels themselves (Li's released code). Per-patch normalisation discards each patch's mean colour: on the
synthetic data, whose robust feature is partly colour, a smoke-sized MAE probed 0.58 with it and 0.82
without (1000 images, 8 epochs, mean-pooled).

The representation (:meth:`Mim.encoder`) is the same ViT on *all* patches, no masking, and its class
token after the final LayerNorm (``pool="token"``): the convention of MAE's linear probe and of the
``ViT_Classifier`` in Li et al.'s released code; ``pool="avg"`` averages the patch tokens instead.

Randomness of the encoding: none. Li et al. (Appendix A.4) run AutoAttack's ``rand`` version (EOT) on
MAE "due to the randomness induced in the encoding process", but their released probe classifier, like
MAE's, encodes every patch without masking, which is deterministic; only pretraining masks. So this
encoder reports ``randomised = False``: by itself it takes the standard (stronger, deterministic)
AutoAttack, and ``e6.rand_paradigms: [MIM]`` (the paper profile) runs Li's 'rand' on it instead, whose EOT
over identical draws spends 20x the gradients on APGD-CE/-DLR alone. Images come in [0, 1]
and are scaled to [-1, 1] inside the module (Li's released MAE uses that normalisation).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn
from torch.nn.init import trunc_normal_

from advtui.paradigms.base import Encoder, Paradigm, register_paradigm
from advtui.paradigms.trainer import StepFn, own_loss_step
from advtui.catalog.training import MAEConfig


def _kept(num_patches: int, mask_ratio: float) -> int:
    keep = int(num_patches * (1 - mask_ratio))
    if keep < 1:
        raise ValueError(f"mask_ratio: {mask_ratio} keeps no patch of {num_patches}; lower mask_ratio or patch_size")
    return keep


def random_masking(n: int, num_patches: int, mask_ratio: float, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Per image, a uniformly random subset of ``num_patches * (1 - mask_ratio)`` (rounded down) patches to keep.

    Returns ``ids_keep`` (N, keep), the kept patch indices, and ``mask`` (N, num_patches), 1 where a patch is
    hidden. Draws from torch's global RNG (the trainer checkpoints it, so resumed runs mask alike).
    """
    keep = _kept(num_patches, mask_ratio)
    ids_keep = torch.rand(n, num_patches, device=device).argsort(dim=1)[:, :keep]
    mask = torch.ones(n, num_patches, device=device).scatter_(1, ids_keep, 0.0)
    return ids_keep, mask


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor, norm_pix: bool) -> Tensor:
    """Mean squared error over the masked patches only; ``pred``/``target`` (N, L, P), ``mask`` (N, L) 1 = hidden.

    With ``norm_pix`` each target patch is normalised to zero mean and unit variance first (MAE).
    """
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    per_patch = (pred - target).pow(2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


class MaskedAutoencoder(nn.Module):
    """The MIM module: ``vit`` (a timm VisionTransformer, the encoder) and the reconstruction decoder.

    ``forward(x)`` on images in [0, 1] masks, reconstructs and returns the training loss.
    """

    arch = "mae_vit"

    def __init__(self, cfg: MAEConfig, image_size: int) -> None:
        super().__init__()
        if image_size % cfg.patch_size:
            raise ValueError(
                f"patch_size: {cfg.patch_size} does not divide the image size {image_size}; pick a patch size that does"
            )
        self.cfg = cfg
        # timm (with torchvision) takes about two seconds to import; every pipeline stage loads this module.
        from timm.models.vision_transformer import Block, VisionTransformer, init_weights_vit_timm

        # The encoder pools (cfg.pool); timm's own head stays off, and fc_norm=False keeps its final
        # LayerNorm on every token, where the decoder trains it (a post-pooling norm never would be).
        self.vit = VisionTransformer(
            img_size=image_size, patch_size=cfg.patch_size, num_classes=0, global_pool="token",
            embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, fc_norm=False,
        )
        self.num_patches = self.vit.patch_embed.num_patches
        _kept(self.num_patches, cfg.mask_ratio)  # fail at build time, not at the first step
        self.decoder_embed = nn.Linear(cfg.embed_dim, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, cfg.decoder_dim))
        self.decoder_blocks = nn.Sequential(
            *[Block(cfg.decoder_dim, cfg.decoder_heads, mlp_ratio=cfg.mlp_ratio) for _ in range(cfg.decoder_depth)]
        )
        self.decoder_norm = nn.LayerNorm(cfg.decoder_dim)
        self.decoder_pred = nn.Linear(cfg.decoder_dim, cfg.patch_size**2 * 3)
        trunc_normal_(self.mask_token, std=0.02)
        trunc_normal_(self.decoder_pos_embed, std=0.02)
        for name in ("decoder_embed", "decoder_blocks", "decoder_norm", "decoder_pred"):
            getattr(self, name).apply(init_weights_vit_timm)

    @staticmethod
    def normalise(x: Tensor) -> Tensor:
        """Images in [0, 1] to the model's input range [-1, 1]."""
        return x * 2.0 - 1.0

    def patchify(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) -> (N, L, p*p*3), patches in the ViT's row-major order."""
        p = self.cfg.patch_size
        n, c, h, w = x.shape
        return x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(n, (h // p) * (w // p), p * p * c)

    def encode_visible(self, x: Tensor, ids_keep: Tensor) -> Tensor:
        """The ViT on the kept patches of normalised images ``x``: (N, 1 + keep, D), class token first.

        The same embedding, blocks and norm as ``vit.forward_features``, with the patches gathered after
        their position embedding is added (so each keeps its place).
        """
        vit = self.vit
        tokens = vit.patch_embed(x) + vit.pos_embed[:, vit.num_prefix_tokens :]
        tokens = torch.gather(tokens, 1, ids_keep[..., None].expand(-1, -1, tokens.shape[-1]))
        cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(len(x), -1, -1)
        return vit.norm(vit.blocks(vit.norm_pre(torch.cat([cls, tokens], dim=1))))

    def decode(self, latent: Tensor, ids_keep: Tensor) -> Tensor:
        """Predicted patches (N, L, p*p*3) from the encoded visible tokens, mask tokens everywhere else."""
        x = self.decoder_embed(latent)
        n, _, dim = x.shape
        patches = torch.scatter(
            self.mask_token.expand(n, self.num_patches, dim), 1, ids_keep[..., None].expand(-1, -1, dim), x[:, 1:]
        )
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed
        return self.decoder_pred(self.decoder_norm(self.decoder_blocks(x)))[:, 1:]

    def forward(self, x: Tensor) -> Tensor:
        """The MAE loss on images ``x`` in [0, 1], with a fresh random mask per image."""
        x = self.normalise(x)
        ids_keep, mask = random_masking(len(x), self.num_patches, self.cfg.mask_ratio, x.device)
        pred = self.decode(self.encode_visible(x, ids_keep), ids_keep)
        return masked_mse(pred, self.patchify(x), mask, self.cfg.norm_pix_loss)


class MAEEncoder(Encoder):
    """The MAE's ViT on all patches (no masking), pooled by ``cfg.pool``: deterministic.

    The pooling has no weights, so ``cfg`` may differ from the module's own in ``pool`` (read a trained
    MAE both ways without retraining); nothing else may differ.
    """

    randomised = False

    def __init__(self, mae: MaskedAutoencoder, cfg: MAEConfig) -> None:
        super().__init__()
        if replace(cfg, pool=mae.cfg.pool) != mae.cfg:
            raise ValueError("cfg: differs from the module's config in more than pool; pass the config the module was built with")
        self.mae = mae
        self.pool = cfg.pool
        self.feature_dim = cfg.embed_dim

    def forward(self, x: Tensor) -> Tensor:
        vit = self.mae.vit
        tokens = vit.forward_features(self.mae.normalise(x))
        return tokens[:, 0] if self.pool == "token" else tokens[:, vit.num_prefix_tokens :].mean(dim=1)


@register_paradigm
class Mim(Paradigm):
    """MIM: masked-autoencoder pretraining; the encoder is the ViT's class token (or mean patch token)."""

    name = "MIM"
    config_type = MAEConfig

    def build(self, cfg: MAEConfig, *, num_classes: int, image_size: int) -> nn.Module:
        return MaskedAutoencoder(cfg, image_size)

    def step(self, cfg: MAEConfig) -> StepFn:
        return own_loss_step

    def encoder(self, module: nn.Module, cfg: MAEConfig) -> Encoder:
        return MAEEncoder(module, cfg)
