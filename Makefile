# Set-up and checks. `make demo` and `make test` each install what they need first; the
# install step is skipped while setup.cfg/setup.py are unchanged since the last one.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch/torchvision are pinned only when none is importable (a fresh machine); an existing
# install (a CUDA build on a GPU box, say) is kept.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
DEPS_STAMP := .build/deps-$(shell cat setup.cfg setup.py | sha1sum | cut -c1-12).stamp
PYTEST_ARGS ?=

.PHONY: deps demo test bench clean

deps: $(DEPS_STAMP)

$(DEPS_STAMP): setup.cfg setup.py
	@$(PYTHON) -c "import torch, torchvision" 2>/dev/null || $(PIP) install $(TORCH_PIN)
	$(PIP) install -e ".[dev,audio,eval]"
	@mkdir -p .build && rm -f .build/deps-*.stamp && touch $@

demo: deps
	$(PYTHON) -m tokzoo.demo --out outputs/demo

test: deps
	$(PYTHON) -m pytest $(PYTEST_ARGS)

bench: deps
	$(PYTHON) eval/bench_quant.py

clean:
	rm -rf .build outputs build dist *.egg-info
