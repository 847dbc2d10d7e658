"""Local stand-ins for the outside systems (commercetools emulator, SP-API sandbox)."""
