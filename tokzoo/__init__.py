"""tokzoo's applications built on both of its packages (``vistok`` for images and the shared core,
``audiotok`` for audio): the offline demo, ``python -m tokzoo.demo``."""
