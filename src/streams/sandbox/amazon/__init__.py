"""Local Amazon SP-API sandbox: ``running_sandbox(SandboxConfig())``, ``streams sandbox amazon``."""

from streams.sandbox.amazon.control import SandboxControl
from streams.sandbox.amazon.faults import Faults, OperationFaults, TransactionFaults
from streams.sandbox.amazon.generator import CatalogueItem, OrderGenerator, generate_orders
from streams.sandbox.amazon.server import SandboxConfig, create_sandbox_app, main, running_sandbox

__all__ = [
    "CatalogueItem",
    "Faults",
    "OperationFaults",
    "OrderGenerator",
    "SandboxConfig",
    "SandboxControl",
    "TransactionFaults",
    "create_sandbox_app",
    "generate_orders",
    "main",
    "running_sandbox",
]
