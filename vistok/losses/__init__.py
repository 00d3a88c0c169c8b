"""Training losses for image tokenizers: LPIPS and ConvNeXt perceptual losses, PatchGAN and
blur-pool discriminators, GAN terms."""
from vistok.losses.blur_discriminator import BlurPoolDiscriminator
from vistok.losses.convnext_perceptual import ConvNeXtLogitLoss, WeightedPerceptualLoss, build_perceptual
from vistok.losses.discriminator import PatchDiscriminator
from vistok.losses.gan import (
    AdversarialLoss,
    LeCam,
    adaptive_generator_weight,
    hinge_d_loss,
    hinge_g_loss,
    non_saturating_d_loss,
    non_saturating_g_loss,
)
from vistok.losses.perceptual import PerceptualBackboneWarning, PerceptualLoss, backbone_checkpoint

__all__ = [
    "AdversarialLoss",
    "BlurPoolDiscriminator",
    "ConvNeXtLogitLoss",
    "WeightedPerceptualLoss",
    "build_perceptual",
    "LeCam",
    "PatchDiscriminator",
    "PerceptualBackboneWarning",
    "PerceptualLoss",
    "adaptive_generator_weight",
    "backbone_checkpoint",
    "hinge_d_loss",
    "hinge_g_loss",
    "non_saturating_d_loss",
    "non_saturating_g_loss",
]
