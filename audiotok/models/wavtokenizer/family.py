"""The WavTokenizer family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``: the
core finds it there as it would a third-party plugin's."""
from audiotok.registration import AUDIO
from vistok.registry import Family

FAMILY = Family(
    "wavtokenizer", "audiotok.models.wavtokenizer.model:WavTokenizer", "audio", objective="audio",
    official_converter="audiotok.models.wavtokenizer.convert:convert_wavtokenizer_state_dict",
    discriminator_converter="audiotok.models.wavtokenizer.convert:convert_wavtokenizer_discriminators",
    **AUDIO,
)
