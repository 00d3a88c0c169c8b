"""The SNAC family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``. It trains with
the shared audio objective (mel / MR-STFT losses and the audio discriminators; its quantizer losses
come through ``ReconOut.loss``). Official releases are Hugging Face repos whose ``config.json``
(a sidecar) the config resolver reads."""
from audiotok.registration import AUDIO
from vistok.registry import Family

FAMILY = Family("snac", "audiotok.models.snac.model:SNAC", "audio", objective="audio",
                official_converter="audiotok.models.snac.convert:convert_snac_state_dict",
                config_resolver="audiotok.models.snac.convert:resolve_card_config", sidecars=("config.json",),
                **AUDIO)
