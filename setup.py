"""Build shim: metadata lives in setup.cfg. Only the package list is here, because the zoo cards
(``zoo/*.yaml`` at the repository root) ship inside the wheel as the resource package
``vistok.zoo_cards``, a directory mapping setup.cfg cannot express next to ``find:``."""
from setuptools import find_packages, setup

packages = find_packages(include=["vistok", "vistok.*", "audiotok", "audiotok.*", "tokzoo", "tokzoo.*"])
packages += ["vistok.zoo_cards"]
setup(packages=packages, package_dir={"vistok.zoo_cards": "zoo"})
