"""Python 3.9 + Ryu 4.34: find the interpreter, build (once) and reuse a cached venv.

Classic Ryu 4.34 only runs on Python <= 3.9 (with eventlet 0.30.2), so the
Ryu integration run needs its own interpreter and virtual environment, apart
from the project's default os-ken / Python 3.11 ``.venv``.

:func:`find_python39` takes ``$NEMO_RYU39_PYTHON`` if set (a path, or ``none``),
else looks, in order, for

1. ``python3.9`` on PATH that really runs (a pyenv shim for a version that is
   not selected exits 127 with "command not found": it does not count);
2. ``$PYENV_ROOT/versions/3.9.*/bin/python3.9`` (default ``~/.pyenv``, and
   ``/root/.pyenv``), highest patch release first;
3. ``PYENV_VERSION=3.9.x python3.9`` for each 3.9 that ``pyenv versions --bare``
   lists, resolved to the real executable (``sys.executable``).

:func:`ensure_venv` creates ``<repo>/.venv-ryu39`` (or ``$NEMO_RYU39_VENV``) with
the recipe that works for Ryu's old sdist::

    pip install setuptools==67.6.1 wheel pbr
    pip install --no-build-isolation ryu==4.34 eventlet==0.30.2 PyYAML

and writes a stamp file listing the interpreter and the requirements; while the
stamp matches and the venv imports Ryu 4.34, the venv is reused. The build runs
under a file lock in the temp directory (parallel test runs wait for one build). The
project is not installed into the venv: :meth:`Ryu39Venv.env` puts the
repository on ``PYTHONPATH``. A failed build raises :class:`Ryu39BuildError`
with pip's output: the caller must fail (not skip) on it.

Run ``python tests/integration/ryu39.py`` (any Python) to build or check the
venv by hand.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]

#: Where the venv lives (override with $NEMO_RYU39_VENV); keep it out of git.
VENV_ENV = "NEMO_RYU39_VENV"
#: Interpreter override: a path to Python 3.9, or "none" (behave as if there were none).
PYTHON_ENV = "NEMO_RYU39_PYTHON"
DEFAULT_VENV = REPO / ".venv-ryu39"

#: Build toolchain first (Ryu's setup.py needs pbr and an old setuptools), then Ryu
#: without build isolation. Part of the stamp: changing these rebuilds the venv.
BOOTSTRAP = ("setuptools==67.6.1", "wheel", "pbr")
REQUIREMENTS = ("ryu==4.34", "eventlet==0.30.2", "PyYAML")
STAMP_NAME = "nemo-ryu39.stamp"
STAMP_VERSION = 1


class Ryu39BuildError(RuntimeError):
    """Building the Ryu 4.34 venv failed (message includes the failing command's output)."""


def _version_of(argv: List[str], env: Optional[Dict[str, str]] = None) -> Optional[Tuple[str, Tuple[int, int]]]:
    """(sys.executable, (major, minor)) of the interpreter ``argv``, or None if it does not run."""
    try:
        proc = subprocess.run(
            argv + ["-c", "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.split()
    if proc.returncode != 0 or len(lines) != 2:
        return None
    major, minor = lines[1].split(".")
    return lines[0], (int(major), int(minor))


def _patch_key(path: str) -> Tuple[int, ...]:
    match = re.search(r"/3\.9\.(\d+)/", path)
    return (int(match.group(1)),) if match else (-1,)


def _pyenv_roots() -> List[str]:
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv"), "/root/.pyenv"]
    return list(dict.fromkeys(r for r in roots if r))


def find_python39() -> Tuple[Optional[str], str]:
    """(path of a working Python 3.9 interpreter, how it was found) or (None, why not).

    ``$NEMO_RYU39_PYTHON`` overrides the search: an interpreter path, or ``none``
    to act as if there were no Python 3.9. An override that does not run as 3.9
    raises :class:`Ryu39BuildError` (a misconfiguration, not a missing optional).
    """
    override = os.environ.get(PYTHON_ENV, "").strip()
    if override.lower() == "none":
        return None, "no Python 3.9 interpreter: disabled by %s=none" % PYTHON_ENV
    if override:
        found = _version_of([override])
        if not found or found[1] != (3, 9):
            raise Ryu39BuildError("%s=%s does not run as Python 3.9 (%s)"
                                  % (PYTHON_ENV, override, found and "%d.%d" % found[1]))
        return found[0], "%s=%s" % (PYTHON_ENV, override)
    tried: List[str] = []
    on_path = shutil.which("python3.9")
    if on_path:
        found = _version_of([on_path])
        if found and found[1] == (3, 9):
            return found[0], "python3.9 on PATH (%s)" % on_path
        tried.append("%s does not run" % on_path)
    else:
        tried.append("no python3.9 on PATH")
    candidates: List[str] = []
    for root in _pyenv_roots():
        candidates += glob.glob(os.path.join(root, "versions", "3.9.*", "bin", "python3.9"))
    for path in sorted(dict.fromkeys(candidates), key=_patch_key, reverse=True):
        found = _version_of([path])
        if found and found[1] == (3, 9):
            return found[0], "pyenv install %s" % path
        tried.append("%s does not run" % path)
    if not candidates:
        tried.append("no <pyenv root>/versions/3.9.*/bin/python3.9 under %s" % ", ".join(_pyenv_roots()))
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            bare = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True,
                                  timeout=30).stdout.split()
        except (OSError, subprocess.TimeoutExpired):
            bare = []
        for version in sorted((v for v in bare if re.fullmatch(r"3\.9\.\d+", v)),
                              key=lambda v: int(v.split(".")[2]), reverse=True):
            env = dict(os.environ, PYENV_VERSION=version)
            found = _version_of(["python3.9"], env=env)
            if found and found[1] == (3, 9):
                return found[0], "PYENV_VERSION=%s python3.9" % version
            tried.append("PYENV_VERSION=%s python3.9 does not run" % version)
        if not any(re.fullmatch(r"3\.9\.\d+", v) for v in bare):
            tried.append("pyenv lists no 3.9.x")
    else:
        tried.append("no pyenv")
    return None, "no Python 3.9 interpreter (Ryu 4.34 needs Python <= 3.9): " + "; ".join(tried)


@dataclass(frozen=True)
class Ryu39Venv:
    path: Path
    base_python: str
    built: bool  # True if this call built it (False: reused)
    build_seconds: float

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def ryu_manager(self) -> Path:
        return self.path / "bin" / "ryu-manager"

    def env(self, **extra: str) -> Dict[str, str]:
        """Environment to run ``ryu-manager`` with the project importable."""
        env = dict(os.environ)
        for var in ("PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
            env.pop(var, None)
        env["PYTHONPATH"] = str(REPO)
        env["PATH"] = "%s:%s" % (self.path / "bin", env.get("PATH", os.defpath))
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # no 3.9 .pyc files next to the 3.11 ones
        env.update(extra)
        return env


def venv_path() -> Path:
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def _stamp(base_python: str) -> Dict[str, object]:
    return {"stamp": STAMP_VERSION, "base_python": base_python,
            "bootstrap": list(BOOTSTRAP), "requirements": list(REQUIREMENTS)}


def _usable(path: Path, base_python: str) -> bool:
    """The stamp matches and the venv's interpreter imports Ryu, eventlet and yaml."""
    try:
        stamp = json.loads((path / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    if stamp != _stamp(base_python):
        return False
    probe = subprocess.run(
        [str(path / "bin" / "python"), "-c",
         "import ryu, eventlet, yaml, ryu.cmd.manager; assert ryu.version == '4.34', ryu.version"],
        capture_output=True, text=True, timeout=120,
    )
    return probe.returncode == 0 and (path / "bin" / "ryu-manager").exists()


def _run(argv: List[str], what: str, log: List[str], timeout: float) -> None:
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise Ryu39BuildError("%s timed out after %.0f s: %s\n%s" % (
            what, timeout, " ".join(argv), exc.stdout or "")) from None
    log.append("$ %s  (%.1f s, exit %d)\n%s%s" % (" ".join(argv), time.monotonic() - start,
                                                   proc.returncode, proc.stdout, proc.stderr))
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise Ryu39BuildError("%s failed (exit %d): %s\n%s" % (what, proc.returncode,
                                                              " ".join(argv), tail))


def ensure_venv(base_python: str, path: Optional[Path] = None, *, timeout: float = 900.0) -> Ryu39Venv:
    """Return the cached Ryu 4.34 venv for ``base_python``, building it first if needed."""
    path = Path(path) if path is not None else venv_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The lock lives outside the venv (which a rebuild deletes) and outside the work tree.
    lock_path = Path(tempfile.gettempdir()) / ("nemo-ryu39-%s.lock"
                                               % hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12])
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it right now
        if _usable(path, base_python):
            return Ryu39Venv(path, base_python, built=False, build_seconds=0.0)
        start = time.monotonic()
        log: List[str] = []
        if path.exists():
            shutil.rmtree(path)
        pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
               "--no-input"]
        try:
            _run([base_python, "-m", "venv", str(path)], "creating the venv", log, 300)
            _run(pip + list(BOOTSTRAP), "installing the build toolchain", log, timeout)
            _run(pip + ["--no-build-isolation"] + list(REQUIREMENTS), "installing Ryu 4.34", log,
                 timeout)
            (path / "build.log").write_text("\n".join(log))
            (path / STAMP_NAME).write_text(json.dumps(_stamp(base_python)))
            if not _usable(path, base_python):
                raise Ryu39BuildError("the new venv %s cannot import ryu 4.34, eventlet and yaml "
                                      "(or has no ryu-manager); build log:\n%s"
                                      % (path, "\n".join(log)[-4000:]))
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # never leave a half-built venv to be reused
            raise
        return Ryu39Venv(path, base_python, built=True, build_seconds=time.monotonic() - start)


def main() -> int:
    python, how = find_python39()
    if python is None:
        print(how, file=sys.stderr)
        return 2
    print("Python 3.9: %s (%s)" % (python, how))
    venv = ensure_venv(python)
    print("venv %s: %s" % (venv.path, "built in %.0f s" % venv.build_seconds if venv.built else "reused"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
