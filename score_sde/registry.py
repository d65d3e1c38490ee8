"""Name -> object lookup shared by every registry (SDEs, models, predictors, data sets, ...)."""

from typing import Any, Callable, Dict, TypeVar

T = TypeVar("T")


def lookup(registry: Dict[str, T], name: str, kind: str) -> T:
  """Returns `registry[name]`, or raises ValueError listing the valid names."""
  if name not in registry:
    raise ValueError(f"unknown {kind} {name!r}; choose from {sorted(registry)}")
  return registry[name]


def register(registry: Dict[str, Any], name: str) -> Callable[[T], T]:
  """Decorator adding an object to `registry` under `name`."""

  def deco(obj: T) -> T:
    if name in registry:
      raise ValueError(f"{name!r} is registered twice")
    registry[name] = obj
    return obj

  return deco
