# The two commands: `make demo` and `make test`. Both create .venv and install everything first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BENCH  := $(VENV)/bin/bench
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= results/demo

.PHONY: demo test install clean browser slurm

install: $(STAMP)

# torch/torchvision pinned to the pair that installs offline here (see ../shared/README.md)
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1" -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BENCH) run --method frozen --backbone efficientnet_lite0 --suite toy --tasks tradeoff,davis,jhmdb --results $(DEMO)
	$(BENCH) run --method frozen --backbone vit_tiny_random --suite toy --tasks tradeoff,davis,jhmdb --results $(DEMO)
	$(BENCH) table --results $(DEMO)

# headless Chromium renders the HTML report in tests (Debian's package; the test skips if it cannot be had)
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: the report's browser test will be skipped"

# a real one-node Slurm cluster for tests/test_slurm.py (Debian's packages; the tests skip if they cannot be had)
slurm:
	@command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1 \
	  || (({ find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -60 | grep -q . || apt-get update -qq; } \
	       && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	       slurmctld slurmd slurm-client munge >/dev/null) </dev/null) \
	  || echo "the Slurm daemons could not be installed: the real-Slurm tests will be skipped"

test: $(STAMP) browser slurm
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) results/demo
