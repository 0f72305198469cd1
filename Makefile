# `make demo` and `make test` work on a fresh clone: each sets up .venv/ first.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
# torch is pinned to the CPU build that ships on this kind of machine; a bare `torch` would pull CUDA.
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,train,data,speech,ops

.PHONY: setup demo test test-python test-native test-unity proto bench clean

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

# Python suite, then the native client core and the Unity bindings against a live service. The native
# parts need Debian's toolchain (.ci/run installs it); outside CI they are skipped with a message.
test: test-python test-native test-unity

test-python: setup
	@if command -v npm >/dev/null && [ ! -d tests/node_client/node_modules ]; then \
	    npm ci --prefix tests/node_client --no-audit --no-fund --silent || echo "npm ci failed: the Node client test will skip"; fi
	$(PY) -m pytest -q

test-native: setup
	@if command -v cmake >/dev/null && pkg-config --exists grpc++ 2>/dev/null; then \
	    AVL_REQUIRE_LIVE=1 AVATARLAB_BIN=$(CURDIR)/$(VENV)/bin/avatarlab bash client_core/build_and_test.sh; \
	elif [ -n "$$CI" ]; then echo "CI needs cmake and libgrpc++-dev (see .ci/run)"; exit 1; \
	else echo "skipping native client core tests: apt-get install cmake libgrpc++-dev protobuf-compiler-grpc libgtest-dev libturbojpeg0-dev"; fi

test-unity: test-native
	@if [ ! -f unity_plugin/run_tests.sh ]; then true; \
	elif command -v mcs >/dev/null && command -v nunit-console >/dev/null; then \
	    AVL_REQUIRE_LIVE=1 AVATARLAB_BIN=$(CURDIR)/$(VENV)/bin/avatarlab bash unity_plugin/run_tests.sh; \
	elif [ -n "$$CI" ]; then echo "CI needs mono-complete and nunit-console (see .ci/run)"; exit 1; \
	else echo "skipping Unity binding tests: apt-get install mono-complete nunit-console"; fi

proto: setup
	$(PY) tools/gen_proto.py

bench: setup
	$(VENV)/bin/avatarlab bench --json out/bench.json

clean:
	rm -rf $(VENV) out
