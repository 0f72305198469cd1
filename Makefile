# `make demo` and `make test` work on a fresh clone: each sets up .venv/ first.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
# torch is pinned to the CPU build that ships on this kind of machine; a bare `torch` would pull CUDA.
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,train,data,speech,ops

.PHONY: setup demo demo-strip test test-python test-native test-unity test-unreal plugins proto bench clean

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

# The frame strips the README and engine quick starts show: 8 frames of `make demo`, 0.7 s apart, 160 px
# each, and the face closer.
demo-strip: demo
	ffmpeg -v error -y -i out/demo.mp4 -vf "fps=1.4,scale=160:-1,tile=8x1:padding=4:color=white" \
	    -frames:v 1 docs/images/demo_strip.png
	ffmpeg -v error -y -i out/demo.mp4 -vf "fps=1.7,crop=100:100:78:96,scale=144:-1:flags=lanczos,tile=10x1:padding=4:color=white" \
	    -frames:v 1 docs/images/demo_mouth.png  # her face closer, 10 frames

# Python suite, then the native client core and the Unity bindings against a live service. The native
# parts need Debian's toolchain (.ci/run installs it); outside CI they are skipped with a message.
test: test-python test-native test-unity test-unreal

NATIVE_TOOLS := command -v cmake >/dev/null && pkg-config --exists grpc++ 2>/dev/null
NATIVE_HINT  := apt-get install cmake libgrpc++-dev protobuf-compiler-grpc libgtest-dev libturbojpeg0-dev

# The shipping client core for Linux x86_64 (Release, stripped), staged with its runtime
# dependencies into unity_plugin/Plugins/Linux/x86_64/ and unreal_plugin/Binaries/ThirdParty/.
# Other platforms: client_core/packaging/ (scripts and a CI workflow; not run here).
plugins:
	@if $(NATIVE_TOOLS); then bash client_core/packaging/build_linux_x86_64.sh; \
	elif [ -n "$$CI" ]; then echo "CI needs cmake and libgrpc++-dev (see .ci/run)"; exit 1; \
	else echo "skipping make plugins: $(NATIVE_HINT)"; fi

test-python: setup
	@if command -v npm >/dev/null && [ ! -d tests/node_client/node_modules ]; then \
	    npm ci --prefix tests/node_client --no-audit --no-fund --silent || echo "npm ci failed: the Node client test will skip"; fi
	$(PY) -m pytest -q

test-native: setup
	@if $(NATIVE_TOOLS); then \
	    AVL_REQUIRE_LIVE=1 AVATARLAB_BIN=$(CURDIR)/$(VENV)/bin/avatarlab bash client_core/build_and_test.sh; \
	elif [ -n "$$CI" ]; then echo "CI needs cmake and libgrpc++-dev (see .ci/run)"; exit 1; \
	else echo "skipping native client core tests: $(NATIVE_HINT)"; fi

# The Unity package's tests run against the library `make plugins` staged into it.
test-unity: setup plugins
	@if [ ! -f unity_plugin/run_tests.sh ]; then true; \
	elif ! $(NATIVE_TOOLS); then echo "skipping Unity binding tests: no staged native library ($(NATIVE_HINT))"; \
	elif command -v mcs >/dev/null && command -v nunit-console >/dev/null; then \
	    AVL_REQUIRE_LIVE=1 AVATARLAB_BIN=$(CURDIR)/$(VENV)/bin/avatarlab bash unity_plugin/run_tests.sh; \
	elif [ -n "$$CI" ]; then echo "CI needs mono-complete and nunit-console (see .ci/run)"; exit 1; \
	else echo "skipping Unity binding tests: apt-get install mono-complete nunit-console"; fi

# The Unreal plugin's structural tests and plain-C++ glue, linked against its staged library.
test-unreal: setup plugins
	@lib=unreal_plugin/Binaries/ThirdParty/AvatarLabClientCore/Linux/x86_64-unknown-linux-gnu/libavatarlab_client.so; \
	if [ -f $$lib ]; then AVATARLAB_CLIENT_LIB=$(CURDIR)/$$lib $(PY) -m pytest -q tests/test_unreal_plugin.py; \
	else $(PY) -m pytest -q tests/test_unreal_plugin.py; fi

proto: setup
	$(PY) tools/gen_proto.py

bench: setup
	$(VENV)/bin/avatarlab bench --json out/bench.json

clean:
	rm -rf $(VENV) out
