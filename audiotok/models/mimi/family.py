"""The Mimi family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``. Inference only:
it declares the shared audio package (``tokzoo audio``, the audio data kind) for encoding and
decoding, but :meth:`~audiotok.models.mimi.model.Mimi.prepare_training` refuses a training run.
A transformers repo's ``config.json`` (a sidecar) is checked against the card's config."""
from audiotok.registration import AUDIO
from vistok.registry import Family

FAMILY = Family("mimi", "audiotok.models.mimi.model:Mimi", "audio", objective="audio",
                official_converter="audiotok.models.mimi.convert:convert_mimi_state_dict",
                config_resolver="audiotok.models.mimi.convert:resolve_card_config", sidecars=("config.json",),
                **AUDIO)
