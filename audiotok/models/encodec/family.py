"""The EnCodec family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``. It trains
with the shared audio objective; EnCodec's published losses are options of it (``msstft``
discriminator, waveform L1, multi-scale mel, loss balancer: ``train/encodec/encodec_24khz.yaml``)."""
from audiotok.registration import AUDIO
from vistok.registry import Family

FAMILY = Family("encodec", "audiotok.models.encodec.model:EnCodec", "audio", objective="audio",
                official_converter="audiotok.models.encodec.convert:convert_encodec_state_dict", **AUDIO)
