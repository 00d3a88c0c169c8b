"""The families the ``vistok`` package provides, registered as ``tokzoo.families`` entry points in
``setup.cfg`` (the core finds them there, as it finds any plugin's)."""
from vistok.registry import Family

TITOK = Family("titok", "vistok.models.titok:TiTok", "image",
               official_converter="vistok.hub.titok:convert_titok_state_dict")
MASKGIT_VQGAN = Family("maskgit_vqgan", "vistok.models.maskgit_vqgan:MaskGITVQGAN", "image",
                       official_converter="vistok.hub.maskgit:convert_maskgit_state_dict")
FLEXTOK = Family("flextok", "vistok.models.flextok:FlexTok", "image", objective="flow",
                 official_converter="vistok.hub.flextok:convert_flextok_state_dict",
                 config_resolver="vistok.hub.flextok:resolve_card_config", sidecars=("config.json",))
FLEXTOK_VAE = Family("flextok_vae", "vistok.models.flextok:FlexTokVAE", "image", objective="vae",
                     official_converter="vistok.hub.flextok:convert_flextok_vae_state_dict",
                     config_resolver="vistok.hub.flextok:resolve_card_config", sidecars=("config.json",))
# not a tokenizer: the class-conditional AR model over a tokenizer's ids (trained here only)
GENERATOR = Family("generator", "vistok.models.generator:ARGenerator", "tokens", objective="ar_tokens")
