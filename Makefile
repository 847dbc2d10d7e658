# The README's two commands. Everything else is the `streams` CLI.
.PHONY: demo test setup
demo:  ## set up, start Kafka + emulators + worker, generate traffic, show it live
	@scripts/demo.sh $(ARGS)
test:  ## set up, start Kafka + the commercetools emulator, run lint, types and all tests
	@scripts/test.sh $(ARGS)
setup:
	@scripts/setup.sh --dev
