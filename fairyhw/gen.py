"""``python -m fairyhw.gen``: the same command as ``fairyhw gen`` (:mod:`fairyhw.flow.gen`), under the
generator's long-standing name."""

import sys

if __name__ == "__main__":
    from . import cli
    from .flow.gen import main
    cli.invoked_as = "python -m fairyhw.gen"
    sys.exit(main())
