"""Building a model from a config that came from a file (``config.json``, a recipe's ``model.config``):
what such a config can get wrong is refused, naming where it came from, before any memory is spent.

The keys must be fields of the family's config class and plain-typed fields (int, float, bool, str,
lists and mappings) must hold values of their type; the model is then built once on the meta
device, where a bad value fails without allocating anything (a config declaring a 10^12-entry
codebook does not ask for terabytes), and, given the weights it is to load, its tensor names and
shapes are compared with theirs. Only then is the model built for real.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import typing
from typing import Any, Mapping, Optional, Tuple

import torch

from vistok.errors import InputError
from vistok.models.state_dict import check_fit

# what a config value can make a constructor raise (a zero patch size, a negative dimension, ...)
_BAD_VALUE = (TypeError, ValueError, ZeroDivisionError, RuntimeError, KeyError, IndexError, OverflowError)


def config_class(model_cls: type) -> Optional[type]:
    """The config dataclass a model class declares (``ZooModel.config_class``), if any."""
    cls = getattr(model_cls, "config_class", None)  # (a plugin's class may predate the attribute)
    return cls if inspect.isclass(cls) and dataclasses.is_dataclass(cls) else None


def _plain_types(annotation: Any) -> Optional[Tuple[type, ...]]:
    """The Python types a JSON/YAML value of a field annotated ``annotation`` may have, or None when
    the annotation is not one this check understands (then the value is not checked)."""
    if annotation in (int, float, bool, str, type(None)):
        return (int, float) if annotation is float else (annotation,)
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        members = [_plain_types(a) for a in typing.get_args(annotation)]
        return None if any(m is None for m in members) else tuple(t for m in members for t in m)
    if origin in (dict, typing.Dict) or (inspect.isclass(origin) and issubclass(origin, Mapping)):
        return (dict,)
    if origin in (list, tuple, typing.List, typing.Tuple) or annotation in (list, tuple):
        return (list, tuple)
    return None


def _fits(value: Any, types: Tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # true is not a size
    return isinstance(value, types)


def check_config(model_cls: type, config: Any, where: str) -> None:
    """Refuse a ``config`` that is not a mapping, names a field the config class lacks, or gives a
    plain-typed field a value of another type."""
    if not isinstance(config, Mapping):
        raise InputError(f"{where}: expected a mapping of config fields, got {type(config).__name__} {config!r:.80}")
    cls = config_class(model_cls)
    if cls is None:
        return
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    for key, value in config.items():
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known: {', '.join(known)}"
            raise InputError(f"{where}: unknown key {key!r} for {cls.__name__}{hint}")
        types = _plain_types(hints.get(key))
        if types is not None and not _fits(value, types):
            names = " or ".join(sorted({"null" if t is type(None) else t.__name__ for t in types}))
            raise InputError(f"{where}: {key} must be {names}, got {type(value).__name__} {value!r:.80}")


class _OverBudget(Exception):
    pass


@contextlib.contextmanager
def _tensor_budget(budget: Optional[int]):
    """Stop a model's construction once it has registered more than ``budget`` parameters and
    buffers: a config declaring 10^5 layers would otherwise take minutes to build even on the meta
    device, only to be refused for not fitting the weights."""
    if budget is None:
        yield
        return
    count = 0

    def hook(module, name, tensor):
        nonlocal count
        count += 1
        if count > budget:
            raise _OverBudget()

    from torch.nn.modules.module import (register_module_buffer_registration_hook,
                                         register_module_parameter_registration_hook)

    handles = [register_module_parameter_registration_hook(hook), register_module_buffer_registration_hook(hook)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def build_checked(family, config: Any, where: str, state: Optional[Mapping[str, torch.Tensor]] = None,
                  source: str = ""):
    """``family.build(config)`` after the checks in the module docstring; ``state`` (the weights the
    model will load, named ``source`` in errors) must fit the model built on the meta device."""
    check_config(family.model_class(), config, where)
    try:
        with torch.device("meta"), _tensor_budget(None if state is None else 4 * len(state) + 100):
            probe = family.build(config)
    except _OverBudget:
        raise InputError(f"{where}: declares a far larger model than the {len(state)} tensors of {source}") from None
    except NotImplementedError:
        probe = None  # a model that cannot be built on the meta device is only checked when built
    except _BAD_VALUE as err:
        if isinstance(err, RuntimeError) and "meta" in str(err):
            probe = None
        else:
            raise InputError(f"{where}: does not describe a {family.name} model "
                             f"({type(err).__name__}: {' '.join(str(err).split())})") from None
    if probe is not None and state is not None:
        check_fit(probe, dict(state), source)
    return family.build(config)
