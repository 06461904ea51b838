"""The ``simsam`` console script and ``python -m simsam``: signal handling first, then the CLI."""
from __future__ import annotations

import sys

from simsam import _signals


def run(argv: list[str] | None = None) -> int:
    _signals.install()  # before the imports below, which take about a second (JAX)
    try:
        from simsam.cli import main

        code = main(argv)
    except KeyboardInterrupt:
        return _signals.interrupted()
    except BaseException:
        if _signals.received():  # an import cut short by the signal fails in any way: still the signal
            return _signals.interrupted()
        raise
    finally:
        _signals.quiet()
    # A signal whose KeyboardInterrupt was swallowed by compiled code still ends the command so.
    return _signals.interrupted() if _signals.received() else code


if __name__ == "__main__":
    sys.exit(run())
