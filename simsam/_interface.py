"""Declared interfaces: abstract classes that list what generic code may ask of a part.

The shipped parts subclass them (``Problem``/``FiniteSum``, ``Sampler``, ``Optimizer``,
``Reference``); a user's own part may subclass them too, or only have the members: the engine checks
``REQUIRED`` by name (:meth:`Interface.require`), so a duck-typed optimizer (the tutorial's) runs, and
one that lacks a member is refused in one line naming it.
"""
from __future__ import annotations

import abc

from simsam.errors import SimsamError


class Interface(abc.ABC):
    REQUIRED: tuple[str, ...] = ()

    @classmethod
    def missing(cls, obj) -> list[str]:
        """The required members ``obj`` lacks."""
        return [a for a in cls.REQUIRED if not hasattr(obj, a)]

    @classmethod
    def require(cls, what: str, obj) -> None:
        """SimsamError naming the members ``obj`` (the ``what`` argument) lacks, if any."""
        missing = cls.missing(obj)
        if missing:
            raise SimsamError(f"{what} must be a simsam {cls.__name__} (with {', '.join(cls.REQUIRED)}); "
                              f"a {type(obj).__name__} lacks {', '.join(missing)}")
