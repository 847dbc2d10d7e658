"""Pure business rules: stdlib and pydantic only (no Faust, aiokafka or aiohttp; a test checks)."""
