"""The EnCodec family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``. It trains
with the shared audio objective (mel / MR-STFT losses and the audio discriminators; EnCodec's own
MS-STFT discriminator and loss balancer are not implemented yet)."""
from audiotok.registration import AUDIO
from vistok.registry import Family

FAMILY = Family("encodec", "audiotok.models.encodec.model:EnCodec", "audio", objective="audio",
                official_converter="audiotok.models.encodec.convert:convert_encodec_state_dict", **AUDIO)
