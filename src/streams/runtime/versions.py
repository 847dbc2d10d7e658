"""The Faust and aiokafka versions this package's private-API uses were checked against.

``streams.runtime`` overrides and reads private parts of both (listed, one contract test
each, in tests/contract/test_runtime_privates.py). A private may change in any release, so
importing the runtime with another version fails at once instead of misbehaving later (a
commit past an unprocessed record, a table write routed to the wrong partition).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# distribution -> the versions tests/contract/test_runtime_privates.py passed against
TESTED: dict[str, tuple[str, ...]] = {
    "faust-streaming": ("0.15.3",),
    "aiokafka": ("0.14.0",),
}


class UntestedRuntimeVersion(RuntimeError):
    """Faust or aiokafka is not a version the runtime's use of their internals was tested on."""


def installed(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def check_versions(tested: dict[str, tuple[str, ...]] = TESTED) -> None:
    """Raise :class:`UntestedRuntimeVersion` naming every package whose installed version
    was not tested."""
    bad = [(d, installed(d), ok) for d, ok in tested.items() if installed(d) not in ok]
    if bad:
        found = "; ".join(
            f"{d} {v or 'not installed'} (tested: {', '.join(ok)})" for d, v, ok in bad
        )
        raise UntestedRuntimeVersion(
            f"streams.runtime uses private parts of these packages and was not tested with "
            f"the installed version: {found}. Install the tested version, or run "
            f"tests/contract/test_runtime_privates.py against the new one and add it to "
            f"streams.runtime.versions.TESTED when it passes."
        )
