"""What the audio package adds to the core, declared once and shared by every audio codec family
(``Family(..., **AUDIO)``): the codec objective and its ``loss.audio`` section, ``data.kind:
audio``, the discriminators ``loss.audio.discriminators`` can name, and ``tokzoo audio``."""
AUDIO = dict(
    objectives={"audio": "audiotok.objective:AudioObjective"},
    recipe_sections={"loss.audio": "audiotok.recipe:AudioLoss"},
    data_kinds={"audio": "audiotok.data:recipe_dataset"},
    discriminators={name: f"audiotok.discriminators.catalog:{name}"
                    for name in ("mpd", "mrd", "dac", "dac_hann", "msstft")},
    commands=("audiotok.cli:register",),
)
