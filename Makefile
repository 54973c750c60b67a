# Entry points; tests/run.sh does the work (see its header). VENV=path picks the virtualenv.
VENV ?= .venv
export VENV

RUN = bash tests/run.sh

.PHONY: venv world demo test units sanity lint docs changelog integration clean

venv:
	$(RUN) venv

world:
	$(RUN) world

demo:
	$(RUN) demo

test:
	$(RUN) test

units:
	$(RUN) units

sanity:
	$(RUN) sanity

lint:
	$(RUN) lint

docs:
	$(RUN) docs

changelog:
	$(RUN) changelog

integration:
	$(RUN) integration

clean:
	rm -rf tests/output .pytest_cache otp-release-*.tar.gz "$(VENV)"
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
