# latentcast: the two commands are `make demo` and `make test`; both install into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch 2.13.0 on these machines; on a CUDA machine pip takes the CUDA build
# of the same version. Override, e.g.: make install TORCH="torch==2.13.0 --index-url ..."
TORCH ?= torch==2.13.0
DEMO_SOURCE ?= auto
DEMO_SECONDS ?= 12
DEMO_PORT ?= 5555
# Empty: each end's default (realtime, or realtime-lite where the CPU computes in float32
# only); DEMO_MODEL=fast: factorized prior, a few frames per second.
DEMO_MODEL ?=

.PHONY: install demo test test-slow lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	@# A venv made before the GUI OpenCV: both wheels write cv2/, so take the headless one out first.
	$(PY) -m pip uninstall --quiet -y opencv-python-headless 2>/dev/null || true
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	@# CompressAI, for the speed benchmark's comparison only; see benchmarks/compressai_ref.py
	@# for why without its declared dependencies (they would replace torch and numpy).
	$(PY) -m pip install --quiet --no-deps "compressai==1.2.8"
	touch $@

demo: install
	@echo "== latentcast demo: receiver and sender on loopback for $(DEMO_SECONDS) s =="
	@rm -rf demo-out
	@$(PY) -m receiver --connect tcp://127.0.0.1:$(DEMO_PORT) $(if $(DEMO_MODEL),--model $(DEMO_MODEL)) \
	  --idle-timeout 60 --out demo-out & \
	  receiver=$$!; \
	  $(PY) -m sender --source $(DEMO_SOURCE) --bind tcp://127.0.0.1:$(DEMO_PORT) --loop \
	    $(if $(DEMO_MODEL),--model $(DEMO_MODEL)) \
	    --duration $(DEMO_SECONDS) --quiet || { kill $$receiver; exit 1; }; \
	  wait $$receiver
	@echo "== wrote demo-out/: side_by_side.png (original | reconstruction), timeline.png, strip.png, summary.json, frames.jsonl =="

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) demo-out .pytest_cache
