"""The X-Codec 2 family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``. Inference
only: it declares the shared audio package (``tokzoo audio``, the audio data kind) for encoding and
decoding, but :meth:`~audiotok.models.xcodec2.model.XCodec2.prepare_training` refuses a training run."""
from audiotok.registration import AUDIO
from vistok.registry import Family

FAMILY = Family("xcodec2", "audiotok.models.xcodec2.model:XCodec2", "audio", objective="audio",
                official_converter="audiotok.models.xcodec2.convert:convert_xcodec2_state_dict", **AUDIO)
