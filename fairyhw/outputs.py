"""One way to prepare and commit what a command writes, and one way to run a command line.

Every command that writes files goes through :class:`Outputs`:

1. **Check before the work.** :meth:`Outputs.file` and :meth:`Outputs.into` (files written into a
   directory) and :meth:`Outputs.owned_dir` (a directory written whole) check each target when they are
   declared: a directory where a file is wanted (or the reverse), a symbolic link (dangling or not), a
   missing or unwritable parent. A staging folder is made beside the targets at once, so an unwritable
   place is found before any long work starts.
2. **Write to the staging folder** (:meth:`Outputs.path` gives a staging path for a target).
3. **Commit** (:meth:`Outputs.commit`): each target is moved into place with ``os.replace``; a directory
   created for the command is created only now. Leaving the ``with`` block without a commit (an error,
   Ctrl-C, SIGTERM) removes the staging folder and leaves no partial output.

``--force`` replaces a whole output directory only when fairyhw wrote it (it holds the marker file the
command names, e.g. ``summary.json`` with a ``fairyhw_version`` key), and never the current directory, a
directory above it, an input of the command, or a directory holding an input.

:func:`run_command` wraps a command line's ``main``: :class:`~fairyhw.FairyError` becomes one
``error:`` line and exit status 2, Ctrl-C (SIGINT) and SIGTERM one line and exit status 130 and 143,
and paths that are not valid UTF-8 print with backslash escapes instead of raising.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import tempfile

from . import FairyError

__all__ = ["Outputs", "Terminated", "run_command", "show", "dumps_json", "check_finite", "TIMING_SUFFIX"]

#: The suffix of the file beside a report that holds its wall-clock times (``NAME.timing.json`` beside
#: ``NAME.json``), so that the report itself is the same from run to run.
TIMING_SUFFIX = ".timing.json"


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM (cleanup runs as for Ctrl-C)."""


def show(path) -> str:
    """A printable form of a path: undecodable bytes as backslash escapes, never an encoding error."""
    text = os.fsdecode(path)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def check_finite(obj, where: str = "result") -> None:
    """Raise :class:`FairyError` if ``obj`` (nested dicts, lists, numbers) holds a NaN or infinity."""
    def walk(x, path):
        if isinstance(x, float) and not math.isfinite(x):
            raise FairyError(f"{where}: {path or 'value'} is {x}, not a finite number")
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")
    walk(obj, "")


def dumps_json(obj, **kw) -> str:
    """``json.dumps`` that refuses NaN and infinities (they are not JSON) with a clear error."""
    check_finite(obj)
    return json.dumps(obj, allow_nan=False, **kw)


def _abs(path) -> str:
    return os.path.abspath(os.fspath(path))


def _is_within(inner: str, outer: str) -> bool:
    """Whether ``inner`` is ``outer`` or lies below it (both absolute, symbolic links resolved)."""
    inner, outer = os.path.realpath(inner), os.path.realpath(outer)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


class Outputs:
    """The files and directories one command writes, checked first and committed together.

    Use as a context manager; see the module docstring."""

    def __init__(self):
        self._targets: dict[str, tuple[str, str]] = {}   # abs target -> (kind, staged path)
        self._mkdirs: list[str] = []
        self._replace: set[str] = set()                  # owned dirs replaced on commit
        self._stage: str | None = None

    # -- declaring targets (checked at once) -----------------------------------------------------

    def _staging(self, near: str) -> str:
        if self._stage is None:
            try:
                self._stage = tempfile.mkdtemp(prefix=".fairyhw-", dir=near)
            except OSError as e:
                raise FairyError(f"cannot write into {show(near)}: {e.strerror}") from None
        elif os.stat(self._stage).st_dev != os.stat(near).st_dev:
            raise FairyError(f"outputs must be on one file system: {show(near)}")
        return self._stage

    @staticmethod
    def _parent_dir(path: str, option: str, given=None) -> str:
        parent = os.path.dirname(path)
        shown = show(os.path.dirname(os.fspath(given)) or ".") if given is not None else show(parent)
        if not os.path.isdir(parent):
            what = "is not a directory" if os.path.lexists(parent) else "does not exist"
            raise FairyError(f"{option}: the folder {shown} {what}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise FairyError(f"{option}: the folder {shown} is not writable")
        return parent

    def _stage_name(self, target: str) -> str:
        n = len(self._targets)
        return os.path.join(self._stage, f"{n}-{os.path.basename(target) or 'out'}")

    def file(self, path, option: str = "--out") -> str:
        """Declare an output file; return its absolute path (write to :meth:`path` of it)."""
        target = _abs(path)
        if os.path.islink(target):
            raise FairyError(f"{option}: {show(path)} is a symbolic link; name a file")
        if os.path.isdir(target):
            raise FairyError(f"{option}: {show(path)} is a directory, expected a file")
        if target in self._targets:
            return target
        parent = os.path.dirname(target)
        if parent not in self._mkdirs:
            self._parent_dir(target, option, path)
        self._staging(self._existing(parent))
        self._targets[target] = ("file", self._stage_name(target))
        return target

    @staticmethod
    def _existing(d: str) -> str:
        while not os.path.isdir(d):
            d = os.path.dirname(d)
        return d

    def into(self, directory, option: str = "--out") -> str:
        """Declare a directory that files are written into (created on commit if it is missing; its
        parent must exist). Other files in it are left alone. Returns its absolute path."""
        d = _abs(directory)
        if os.path.islink(d) and not os.path.isdir(d):
            raise FairyError(f"{option}: {show(directory)} is a dangling symbolic link")
        if os.path.lexists(d) and not os.path.isdir(d):
            raise FairyError(f"{option}: {show(directory)} is a file, expected a directory")
        if os.path.isdir(d):
            if not os.access(d, os.W_OK | os.X_OK):
                raise FairyError(f"{option}: the folder {show(directory)} is not writable")
            self._staging(d)
        else:
            self._parent_dir(d, option, directory)
            self._staging(os.path.dirname(d))
            self._mkdirs.append(d)
        return d

    def owned_dir(self, path, *, force: bool, marker: str, inputs=(), option: str = "--out") -> str:
        """Declare a directory written whole. It must not exist, unless ``force`` and it holds
        ``marker`` (a JSON file with a ``fairyhw_version`` key: fairyhw wrote it) and is neither the
        current directory, one above it, nor an input or a directory holding one. Returns the staging
        directory to write into (created empty)."""
        target = _abs(path)
        if os.path.islink(target):
            raise FairyError(f"{option}: {show(path)} is a symbolic link; name a new directory")
        if os.path.lexists(target):
            if not force:
                raise FairyError(f"{option}: {show(path)} exists (use --force to replace a directory "
                                 "fairyhw wrote)")
            if not os.path.isdir(target):
                raise FairyError(f"{option}: {show(path)} is a file, not a directory fairyhw wrote; "
                                 "--force replaces only those")
            if _is_within(os.getcwd(), target):
                raise FairyError(f"{option}: {show(path)} is the current directory or holds it; "
                                 "--force never replaces it")
            for inp in inputs:
                if inp is not None and (_is_within(_abs(inp), target) or _is_within(target, _abs(inp))):
                    raise FairyError(f"{option}: {show(path)} is or holds the input {show(inp)}; "
                                     "--force never replaces an input")
            if not _written_by_fairyhw(os.path.join(target, marker)):
                raise FairyError(f"{option}: {show(path)} was not written by fairyhw (no {marker} of "
                                 "fairyhw in it); --force replaces only such directories")
            self._replace.add(target)
        self._parent_dir(target, option, path)
        stage = self._staging(os.path.dirname(target))
        staged = os.path.join(stage, f"{len(self._targets)}-dir")
        os.mkdir(staged)
        self._targets[target] = ("dir", staged)
        return staged

    # -- writing --------------------------------------------------------------------------------

    def path(self, target) -> str:
        """The staging path of a declared target (write the file there)."""
        return self._targets[_abs(target)][1]

    def write_text(self, target, text: str) -> None:
        with open(self.path(target), "w", encoding="utf-8") as f:
            f.write(text)

    def write_json(self, target, obj, **kw) -> None:
        self.write_text(target, dumps_json(obj, **kw) + "\n")

    # -- commit and cleanup ---------------------------------------------------------------------

    def commit(self) -> None:
        """Move every staged output into place (directories created for the command first); not if
        an interrupt came while the outputs were made (see :func:`run_command`)."""
        _raise_if_signalled()
        for d in self._mkdirs:
            os.makedirs(d, exist_ok=True)
        for target, (kind, staged) in self._targets.items():
            if kind == "file":
                os.chmod(staged, 0o644)
                os.replace(staged, target)
            else:
                if target in self._replace and os.path.isdir(target):
                    old = os.path.join(self._stage, "replaced")
                    os.replace(target, old)
                os.chmod(staged, 0o755)
                os.replace(staged, target)

    def close(self) -> None:
        if self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            _ignore_interrupts()        # a second Ctrl-C must not stop the cleanup half-way
        self.close()
        return False


def _written_by_fairyhw(marker_path: str) -> bool:
    try:
        with open(marker_path, encoding="utf-8") as f:
            obj = json.load(f)
        return isinstance(obj, dict) and "fairyhw_version" in obj
    except (OSError, ValueError):
        return False


def _ignore_interrupts() -> None:
    """Ignore SIGINT and SIGTERM from now on (the process is on its way out after an interrupt)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:      # not the main thread
            pass


def _quiet_abandoned_work() -> None:
    """An interrupted elaboration leaves Amaranth components that were never used; their warnings
    (one per component, at exit) are noise after an interrupt."""
    import warnings
    warnings.filterwarnings("ignore", message=r".* created but never used")


def _clear_unhandled_interrupt_flag() -> None:
    """CPython remembers a KeyboardInterrupt that escaped a string ``exec``/``eval`` (the standard
    library and Amaranth generate code that way) and, at exit, kills the process with SIGINT instead
    of returning its exit status, even when the interrupt was handled further up. The next string
    ``exec`` resets that flag, so the command exits with 130 as it says."""
    exec("")


#: The interrupt (KeyboardInterrupt or Terminated) that :func:`run_command`'s handlers raised, if
#: any: a library may catch and drop the exception (an interrupt inside ``import torch`` is lost so),
#: so it is raised again before outputs are committed and when the command returns.
_signalled = None


def _on_sigterm(signum, frame):
    global _signalled
    _signalled = Terminated
    raise Terminated()


def _on_sigint(signum, frame):
    global _signalled
    _signalled = KeyboardInterrupt
    raise KeyboardInterrupt()


def _raise_if_signalled() -> None:
    if _signalled is not None:
        raise _signalled()


def run_command(main, argv=None) -> int:
    """Run a command line's ``main(argv)``: one ``error:`` line for a user mistake (exit status 2),
    for Ctrl-C (130) and for SIGTERM (143); output and temporary files are cleaned up by the
    ``with Outputs()`` blocks as the exception passes."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    global _signalled
    _signalled = None
    previous = previous_int = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:   # not when ignored
            previous_int = signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:      # not the main thread: leave signals alone
        pass
    try:
        rc = main(argv)
        _raise_if_signalled()
        return rc
    except FairyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Terminated:
        _ignore_interrupts()
        _clear_unhandled_interrupt_flag()
        _quiet_abandoned_work()
        print("error: terminated (SIGTERM); no output written", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        _ignore_interrupts()
        _clear_unhandled_interrupt_flag()
        _quiet_abandoned_work()
        print("error: interrupted; no output written", file=sys.stderr)
        return 130
    finally:
        if previous is not None and signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None and signal.getsignal(signal.SIGINT) is _on_sigint:
            signal.signal(signal.SIGINT, previous_int)
