"""The DAC family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``. It trains with
the shared audio objective (mel / MR-STFT losses and the audio discriminators, ``dac`` among them;
its own quantizer losses come through ``ReconOut.loss``)."""
from audiotok.registration import AUDIO
from vistok.registry import Family

FAMILY = Family("dac", "audiotok.models.dac.model:DAC", "audio", objective="audio",
                official_converter="audiotok.models.dac.convert:convert_dac_state_dict",
                config_resolver="audiotok.models.dac.convert:resolve_card_config", **AUDIO)
