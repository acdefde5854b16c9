"""One tiny registry, used for datasets, heads and augmentations (after timm's)."""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a class or function; `register` is a decorator.

    >>> HEADS = Registry("head")
    >>> @HEADS.register("linear")
    ... class Linear: ...
    >>> HEADS.get("linear")
    <class 'crosshar.registry.Linear'>
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        from crosshar.errors import ConfigError

        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]


DATASETS: Registry = Registry("dataset")
HEADS: Registry = Registry("head")
AUGMENTATIONS: Registry = Registry("augmentation")
