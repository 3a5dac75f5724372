"""registry-sync: reconcile a review's table of clinical trials with the trial registries."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("registry-sync")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
