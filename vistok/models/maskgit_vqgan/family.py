"""The MaskGIT-VQGAN family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``."""
from vistok.registry import Family

FAMILY = Family("maskgit_vqgan", "vistok.models.maskgit_vqgan.model:MaskGITVQGAN", "image",
                official_converter="vistok.models.maskgit_vqgan.convert:convert_maskgit_state_dict")
