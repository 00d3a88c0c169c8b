"""The class-conditional autoregressive token generator used for gFID and RobusTok post-training."""
from vistok.models.generator.config import ARGeneratorConfig
from vistok.models.generator.images import check_pair, sample_images
from vistok.models.generator.model import ARGenerator, next_token_loss
from vistok.models.generator.sampling import cfg_scale_at, filter_logits, guide, sample_logits

__all__ = ["ARGenerator", "ARGeneratorConfig", "cfg_scale_at", "check_pair", "filter_logits", "guide",
           "next_token_loss", "sample_images", "sample_logits"]
