"""What code a node runs, as a digest: the component's module and every first-party
module it imports, plus the versions of the third-party libraries they import.

A declared `version` alone lets the cache outlive the code: edit how DIET computes and a
rebuild would still restore the old weights. Hashing the sources closes that hole for
editable checkouts and installed releases alike (both ship `.py` files), while keeping
unrelated components cached: DIET's closure does not contain the count-vector modules,
so editing one leaves the other's entries valid.

Imports are found by scanning the source text, never by importing, so this is cheap
enough for every build and safe on modules that are expensive to import. Imports inside
functions count too (the scan sees the whole file). Parent packages' `__init__` files are
hashed but their imports are not followed: they re-export a public API that components do
not run unless they import it themselves.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import xxhash

from trainkit.engine.fingerprint import fingerprint

_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<from>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n#]*)"
    r"|import[ \t]+(?P<modules>[^\n#]+))",
    re.MULTILINE,
)
_FIRST_PARTY = "trainkit"


@dataclass(frozen=True)
class CodeIdentity:
    """The digest of a component's code, and what it was computed from (for reasons)."""

    digest: str
    modules: tuple[str, ...]
    libraries: tuple[tuple[str, str], ...] = ()


_FILE_MEMO: dict[str, tuple[tuple[object, ...], str, tuple[str, ...]]] = {}
_VERSION_MEMO: dict[str, str] = {}


_ROOTS: dict[str, tuple[Path, bool] | None] = {}


def _package_root(top: str) -> tuple[Path, bool] | None:
    """Where a top-level name lives: (package directory, True) or (its directory, False)
    for a lone module file; found without importing it."""
    if top not in _ROOTS:
        location: str | None = getattr(sys.modules.get(top), "__file__", None)
        if location is None:
            try:
                spec = importlib.util.find_spec(top)
            except (ImportError, ValueError):
                spec = None
            location = spec.origin if spec is not None else None
        found: tuple[Path, bool] | None = None
        if location and location.endswith(".py"):
            path = Path(location)
            found = (path.parent, path.name == "__init__.py")
        _ROOTS[top] = found
    return _ROOTS[top]


_MODULE_FILES: dict[str, tuple[str | None, str, int]] = {}


def _module_file(module: str) -> Path | None:
    """Source file of a module without importing it (None: not a Python source module).

    Answers are remembered with the mtime of the directory they were looked up in, which
    changes when a file is added or removed there, so a remembered answer stays true.
    """
    remembered = _MODULE_FILES.get(module)
    if remembered is not None:
        found, directory, mtime = remembered
        try:
            if os.stat(directory).st_mtime_ns == mtime and (found is None or os.path.isfile(found)):
                return Path(found) if found is not None else None
        except OSError:
            pass
    path, directory = _find_module_file(module)
    if directory is not None:
        try:
            _MODULE_FILES[module] = (None if path is None else str(path), directory,
                                     os.stat(directory).st_mtime_ns)
        except OSError:
            pass
    return path


def _find_module_file(module: str) -> tuple[Path | None, str | None]:
    """The module's file and the directory that decides it (None, None: no such package).

    Plain string paths: this runs for every name a component's closure imports.
    """
    top, _, rest = module.partition(".")
    found = _package_root(top)
    if found is None:
        return None, None
    root, is_package = found
    base = str(root)
    if not is_package:
        return (Path(base, f"{top}.py") if not rest else None), base
    candidate = os.path.join(base, *rest.split(".")) if rest else base
    if rest and os.path.isfile(candidate + ".py"):
        return Path(candidate + ".py"), os.path.dirname(candidate)
    if os.path.isfile(os.path.join(candidate, "__init__.py")):
        return Path(candidate, "__init__.py"), candidate
    return None, os.path.dirname(candidate)


def _version_key(path: Path | str, module: str) -> tuple[object, ...]:
    """What identifies the version of a module's source that matters to this process.

    A module this process has imported runs the code it was imported with, whatever its
    file says now, so its digest is taken once per import (a reload gives the module a new
    spec, hence a new key). A module not imported yet will be read from disk when it is,
    so its file's current state counts.
    """
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return ("imported", id(loaded), id(getattr(loaded, "__spec__", None)))
    stat = os.stat(path)
    return ("file", stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _scan(path: Path, module: str) -> tuple[str, tuple[str, ...]]:
    """Digest of a source file and the absolute module names it imports (memoised by stat)."""
    key = _version_key(path, module)
    cached = _FILE_MEMO.get(str(path))
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    source = path.read_bytes()
    digest = xxhash.xxh3_128_hexdigest(source)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    imported: list[str] = []
    for match in _IMPORT.finditer(source.decode("utf-8", errors="replace")):
        if match.group("modules"):
            for part in match.group("modules").split(","):
                name = part.strip().split(" as ")[0].strip()
                if name:
                    imported.append(name)
            continue
        base = match.group("from") or ""
        if base.startswith("."):
            dots = len(base) - len(base.lstrip("."))
            parent = package.split(".")
            parent = parent[: len(parent) - (dots - 1)] if dots > 1 else parent
            base = ".".join([*parent, base.lstrip(".")]).strip(".")
        if not base:
            continue
        imported.append(base)
        names = match.group("names").strip("() \t\n")
        for part in names.split(","):
            name = part.strip().split(" as ")[0].strip()
            if name and name != "*" and name.isidentifier():
                imported.append(f"{base}.{name}")  # `from pkg import module` imports a module
    result = (digest, tuple(dict.fromkeys(imported)))
    _FILE_MEMO[str(path)] = (key, result[0], result[1])
    return result


def distribution_version(top: str) -> str:
    """Installed version of a third-party top-level package ('' when unknown or stdlib)."""
    if top not in _VERSION_MEMO:
        version = ""
        if top not in sys.stdlib_module_names:
            try:
                version = importlib.metadata.version(top)
            except (importlib.metadata.PackageNotFoundError, ValueError):
                version = ""
        _VERSION_MEMO[top] = version
    return _VERSION_MEMO[top]


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


_IDENTITY_MEMO: dict[str, tuple[tuple[tuple[str, tuple[object, ...]], ...], CodeIdentity]] = {}


def code_identity(module: str) -> CodeIdentity:
    """Digest of `module`'s source closure within its own top-level package and trainkit.

    Memoised per process, and revalidated on every call by the version keys of the
    closure's files (a stat, or the import of a loaded module), so a planner asking for
    many nodes pays for the scan once and still sees an edit.
    """
    remembered = _IDENTITY_MEMO.get(module)
    if remembered is not None:
        files, identity = remembered
        try:
            same_files = all(_version_key(path, name) == key
                             for (path, key), name in zip(files, identity.modules, strict=True))
        except OSError:
            same_files = False
        versions = tuple(sorted((name, distribution_version(name)) for name, _ in identity.libraries))
        if same_files and versions == identity.libraries:
            return identity
    identity = _compute_identity(module)
    try:
        files = tuple((str(path), _version_key(path, name)) for name in identity.modules
                      if (path := _module_file(name)) is not None)
    except OSError:
        return identity
    if len(files) == len(identity.modules):
        _IDENTITY_MEMO[module] = (files, identity)
    return identity


def _compute_identity(module: str) -> CodeIdentity:
    first_party = {_FIRST_PARTY, module.split(".", 1)[0]}
    sources: dict[str, str] = {}
    libraries: dict[str, str] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        path = _module_file(name)
        if path is None:
            continue  # a name imported from a module (a class or function), not a module
        digest, imports = _scan(path, name)
        sources[name] = digest
        for parent in _parents(name):
            parent_path = _module_file(parent)
            if parent_path is not None and parent not in sources:
                sources[parent] = _scan(parent_path, parent)[0]
        for imported in imports:
            top = imported.split(".", 1)[0]
            if top in first_party:
                pending.append(imported)
            elif top and top not in libraries:
                libraries[top] = distribution_version(top)
    if not sources:
        return CodeIdentity("", ())
    versions = sorted((name, version) for name, version in libraries.items() if version)
    digest = fingerprint({"sources": sorted(sources.items()), "libraries": versions})
    return CodeIdentity(digest, tuple(sorted(sources)), tuple(versions))


def component_code(cls: type) -> CodeIdentity:
    """Code identity of a component class: its module's closure and its base classes'."""
    modules = sorted({klass.__module__ for klass in cls.__mro__ if klass.__module__ not in ("builtins",)})
    identities = [code_identity(module) for module in modules]
    files = sorted({m for identity in identities for m in identity.modules})
    libraries = sorted({pair for identity in identities for pair in identity.libraries})
    digest = fingerprint([identity.digest for identity in identities])
    return CodeIdentity(digest, tuple(files), tuple(libraries))
