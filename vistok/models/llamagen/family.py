"""The LlamaGen VQ family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``."""
from vistok.registry import Family

FAMILY = Family("llamagen", "vistok.models.llamagen.model:LlamaGenVQ", "image",
                official_converter="vistok.models.llamagen.convert:convert_llamagen_state_dict")
