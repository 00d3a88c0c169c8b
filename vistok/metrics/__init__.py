"""Metrics: image quality, and (with the evaluation extras) the FID family."""
from vistok.metrics.image_quality import psnr, ssim

__all__ = ["psnr", "ssim"]
