"""The FlexTok families (the tokenizer and its stage-0 VAE), registered as ``tokzoo.families`` entry
points in ``setup.cfg``."""
from vistok.registry import Family

_CONVERT = "vistok.models.flextok.convert"
FLEXTOK = Family("flextok", "vistok.models.flextok.model:FlexTok", "image", objective="flow",
                 official_converter=f"{_CONVERT}:convert_flextok_state_dict",
                 config_resolver=f"{_CONVERT}:resolve_card_config", sidecars=("config.json",),
                 objectives={"flow": "vistok.models.flextok.objective:FlowObjective"})
FLEXTOK_VAE = Family("flextok_vae", "vistok.models.flextok.vae:FlexTokVAE", "image", objective="vae",
                     official_converter=f"{_CONVERT}:convert_flextok_vae_state_dict",
                     config_resolver=f"{_CONVERT}:resolve_card_config", sidecars=("config.json",))
