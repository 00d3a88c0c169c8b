"""The TiTok family, registered as a ``tokzoo.families`` entry point in ``setup.cfg``."""
from vistok.registry import Family

FAMILY = Family("titok", "vistok.models.titok.model:TiTok", "image",
                official_converter="vistok.models.titok.convert:convert_titok_state_dict",
                objectives={"proxy_codes": "vistok.models.titok.proxy_codes:ProxyCodeObjective"})
