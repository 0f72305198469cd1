# `make demo` and `make test` work on a fresh clone: each sets up .venv/ first.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
# torch is pinned to the CPU build that ships on this kind of machine; a bare `torch` would pull CUDA.
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,train,data,speech

.PHONY: setup demo test proto bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -c constraints.txt "$(TORCH)"
	$(PIP) install -c constraints.txt -e ".[$(EXTRAS)]"
	$(PIP) install --no-deps -c constraints.txt mediapipe==0.10.21
	touch $@

demo: setup
	$(VENV)/bin/avatarlab render --image avatar_service/assets/astronaut.png \
	    --audio avatar_service/assets/demo_line.wav -o out/demo.mp4

test: setup
	$(PY) -m pytest -q

proto: setup
	$(PY) tools/gen_proto.py

bench: setup
	$(VENV)/bin/avatarlab bench --json out/bench.json

clean:
	rm -rf $(VENV) out
