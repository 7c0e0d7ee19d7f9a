# How every Lightbox layer is built: by `sam build` (BuildMethod: makefile) for the
# Lambda runtime, and by the packaging tests and the laptop runtime for this machine.
#
# sam build copies the layer's folder to a scratch directory and runs
#     make -f layers/<layer>/Makefile build-<LogicalId> ARTIFACTS_DIR=...
# there; the Makefile is named by its real path, so LAYER_DIR finds the repository.
# The laptop runs the same target with LAYER_PLATFORM=host.
#
# Every layer installs exactly the packages its requirements.txt names (--no-deps), at
# the versions requirements.lock pins (-c): no layer can change another's versions,
# and a package missing from a function's layers is an ImportError on the laptop too.

ROOT           := $(abspath $(LAYER_DIR)/../..)
LOCK           := $(ROOT)/requirements.lock
PYTHON         ?= python3.12
# arm64 (the template's architecture) or host (this machine, for the laptop runtime).
LAYER_PLATFORM ?= arm64
SITE           := $(ARTIFACTS_DIR)/python

ifeq ($(LAYER_PLATFORM),arm64)
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34).
WHEELS := --platform manylinux_2_34_aarch64 --platform manylinux_2_28_aarch64 \
          --platform manylinux2014_aarch64 --implementation cp --python-version 3.12 \
          --abi cp312 --abi abi3 --abi none
else ifeq ($(LAYER_PLATFORM),host)
WHEELS :=
else
$(error LAYER_PLATFORM is arm64 or host, not $(LAYER_PLATFORM))
endif

define install-requirements
	rm -rf "$(SITE)" && mkdir -p "$(SITE)"
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
		--only-binary=:all: $(WHEELS) --target "$(SITE)" \
		-r "$(LAYER_DIR)/requirements.txt" -c "$(LOCK)"
endef

# Lambda's /opt is read-only, so bytecode is compiled here, once; hash-checked files
# stay valid whatever the zip does to modification times.
define compile
	$(PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(SITE)"
endef

# Nothing a function runs: console scripts, test suites, type stubs.
define drop-unused
	rm -rf "$(SITE)/bin"
	find "$(SITE)" -depth -type d -name tests -exec rm -rf {} +
	find "$(SITE)" -name "*.pyi" -delete
endef

# What the layer is built from, for the laptop's cache of host builds (a change to any
# of these rebuilds it): this folder, these rules, the lock, and EXTRA_INPUTS.
inputs:
	@echo "$(LAYER_DIR)" "$(LAYER_DIR)/../layer.mk" "$(LOCK)" $(EXTRA_INPUTS)
