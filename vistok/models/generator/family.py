"""The token generator, registered as a ``tokzoo.families`` entry point in ``setup.cfg``. Not a
tokenizer: the class-conditional AR model over any tokenizer's ids that gFID and RobusTok
post-training use, trained here with its own objective on token shards."""
from vistok.registry import Family

FAMILY = Family("generator", "vistok.models.generator.model:ARGenerator", "tokens", objective="ar_tokens",
                objectives={"ar_tokens": "vistok.models.generator.objective:ARTokenObjective"})
