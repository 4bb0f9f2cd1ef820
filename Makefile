# Vigil. `make test` is what CI runs (.ci/run); it installs the real servers
# and tools the tests use when they are missing, from Debian's packages.

GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test deps vet build demo bench fuzz vendor mutate

test: deps vet
	$(GO) test -race -count=1 -timeout 30m ./...

vet:
	$(GO) vet ./...

# Each tool is named with the Debian package that provides it.
TOOLS := redis-server:redis-server ffmpeg:ffmpeg ffprobe:ffmpeg chromium:chromium promtool:prometheus systemd-analyze:systemd

deps:
	@missing=""; \
	for t in $(TOOLS); do \
		cmd=$${t%%:*}; pkg=$${t##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		pkgs=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
		echo "installing:$$pkgs"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$pkgs; \
	fi

build:
	$(GO) build -o bin/vigil ./cmd/vigil

demo:
	$(GO) run ./cmd/vigil demo

bench:
	$(GO) run ./bench all

fuzz:
	@for p in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$p || exit 1; \
		done; \
	done

# Mutation testing of one package (not part of test): gremlins changes the
# package's code one mutant at a time and runs its tests; a mutant that
# LIVED is a behaviour no test guards. MUTATE_FLAGS passes more flags, such
# as --exclude-files 'recorder/(http|export)' or --dry-run ($ is written $$).
# GOFLAGS=-count=1: gremlins gives each mutant 3 times the first test run,
# and a run from Go's test cache would time every mutant out. A run cut by
# the time limit prints no summary, and its lines after "Shutting down" are
# not results. The whole of ./recorder takes hours: filter it.
GREMLINS := github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
PKG ?= ./recorder
MUTATE_TIMEOUT ?= 20m
MUTATE_WORKERS ?= 1

mutate:
	GOFLAGS=-count=1 timeout -k 30s $(MUTATE_TIMEOUT) $(GO) run $(GREMLINS) unleash --workers $(MUTATE_WORKERS) $(MUTATE_FLAGS) $(PKG)

# Vendored browser libraries, from the npm registry at pinned versions, with
# their licences; SHA256SUMS records what was vendored and is checked.
ECHARTS_VERSION := 6.1.0
VENDOR := web/static/vendor

vendor:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	( cd "$$tmp" && npm pack --silent echarts@$(ECHARTS_VERSION) >/dev/null && tar xzf echarts-$(ECHARTS_VERSION).tgz ) && \
	mkdir -p $(VENDOR)/echarts && \
	cp "$$tmp/package/dist/echarts.esm.min.js" "$$tmp/package/LICENSE" "$$tmp/package/NOTICE" $(VENDOR)/echarts/ && \
	echo "echarts $(ECHARTS_VERSION)" > $(VENDOR)/echarts/VERSION && \
	cd $(VENDOR)/echarts && sha256sum -c SHA256SUMS
