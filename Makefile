# The two commands: `make demo` and `make test`. Both create .venv and install everything first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BENCH  := $(VENV)/bin/bench
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= results/demo

.PHONY: demo test install clean browser slurm gpu-check gpu-wheels

install: $(STAMP)

# torch/torchvision pinned to the pair that installs offline here (see ../shared/README.md)
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1" -e ".[test]"
	touch $(STAMP)

# The demo compares methods, which is what the harness is for: frozen, Co-Settle and AdViSe on the embedded
# EfficientNet-Lite0 over three toy tasks, with the toy suite's own settings (configs/suites.yaml). Each run's
# own one-method table goes to the log; the leaderboard after them carries Δ vs frozen and the † marks.
DEMO_METHODS ?= frozen cosettle advise
DEMO_TASKS   ?= davis,ssv2_cls,tradeoff
demo: $(STAMP)
	@mkdir -p $(DEMO)
	for m in $(DEMO_METHODS); do \
	  $(BENCH) run --method $$m --backbone efficientnet_lite0 --suite toy --tasks $(DEMO_TASKS) --results $(DEMO) \
	    > $(DEMO)/run-$$m.log || exit 1; \
	done
	$(BENCH) table --results $(DEMO) --ci
	$(BENCH) report --results $(DEMO) --out $(DEMO)/report.html

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

# the GPU figures (benchmark/perf/gpu_check.py, under 10 minutes); one line and nothing measured without CUDA.
# On the lent GPU machine (no network; its python3 3.12 has torch, timm, numpy ... but not these) run it with
# `.whl` carried: `make gpu-wheels` here first downloads, for Python 3.12, the versions this venv holds.
GPU_WHEELS := pydantic pydantic_core annotated_types typing_inspection mmengine addict yapf termcolor platformdirs av submitit
gpu-wheels: $(STAMP)
	mkdir -p .whl
	for p in $(GPU_WHEELS); do v=$$($(PY) -c "import importlib.metadata as m; print(m.version('$$p'))") || exit 1; \
	  $(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	    -d .whl "$$p==$$v" || exit 1; done

gpu-check:  # the lent machine's checkout has .whl/ and no venv; anywhere else the venv is used (and made)
	if [ ! -x $(PY) ] && [ -d .whl ]; then \
	  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
	  && PYTHONPATH=/tmp/site:$$PWD python3 -m benchmark.perf.gpu_check --out $${OUT:-.}/gpu_check.json; \
	else $(MAKE) $(STAMP) && $(PY) -m benchmark.perf.gpu_check --out gpu_check.json; fi

clean:
	rm -rf $(VENV) results/demo
