# The two commands: `make run` and `make test`. Both start with `make install`.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: install run test lint format stop clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@# A venv left without pip (no python3-venv on Debian, say) is made again, not reused.
	@$(VPY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV) || { \
		echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt install python3-venv" \
			"(python3.X-venv for another python3.X), then make again." >&2; exit 1; }
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

run: install
	$(VPY) -m beemanhoney.devstack run

test: install
	$(VPY) -m beemanhoney.devstack test $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Without `install`: stopping must work, and cost nothing, whatever state .venv is in.
stop:
	@if [ -x $(VPY) ]; then $(VPY) -m beemanhoney.embedded stop; fi

# purge: the servers stopped, and what they keep outside var/ (as root) removed with it.
clean:
	-@if [ -x $(VPY) ]; then $(VPY) -m beemanhoney.embedded purge; fi
	rm -rf $(VENV) var staticfiles
