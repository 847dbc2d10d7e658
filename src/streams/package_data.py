"""Files the package ships beside its code, found with ``importlib.resources``.

In the repository they live at their documented places (``schemas/``, ``prometheus/alerts.yml``,
``kafka/pom.xml``); ``src/streams/schemas`` and ``src/streams/_data/*`` are symlinks to them, and
building the wheel copies the files themselves (``pyproject.toml``'s package data and
``MANIFEST.in``). So the same lookup works in a checkout, an editable install and
``pip install vc_ct_streams-*.whl`` anywhere else. The package is installed as plain files
(what pip does), so these are ordinary paths.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_path(*parts: str) -> Path:
    """The shipped file or directory ``streams/<parts...>``."""
    return Path(str(resources.files("streams").joinpath(*parts)))


def data_path(*parts: str) -> Path:
    """The shipped file or directory ``streams/_data/<parts...>``."""
    return package_path("_data", *parts)


def schemas_dir() -> Path:
    """The topic contracts (``<topic>.schema.json``) and ``examples/<topic>/``."""
    return package_path("schemas")


def topic_schema_path(topic: str) -> Path:
    return schemas_dir() / f"{topic}.schema.json"


def amazon_models_dir() -> Path:
    """Amazon's SP-API models as vendored (Swagger 2.0 JSON)."""
    return package_path("schemas", "amazon")


def alert_rules_path() -> Path:
    """The Prometheus alerting rules (``prometheus/alerts.yml`` in the repository)."""
    return data_path("prometheus", "alerts.yml")


def kafka_pom_path() -> Path:
    """The Maven file pinning the local Kafka (``streams kafka up``)."""
    return data_path("kafka", "pom.xml")
