# SPDX-License-Identifier: Apache-2.0
# Build chain: bpf/x.bpf.c -> build/bpf/x.bpf.o -> build/skel/x.skel.h -> binaries.
.DELETE_ON_ERROR:
.SECONDARY:
.DEFAULT_GOAL := all

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# SANITIZE=1: everything built with ASan and UBSan, into its own tree.
ifeq ($(SANITIZE),1)
BUILD   := build-sanitize
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   := build
SAN_FLAGS :=
endif
ARCH    := x86
CC      ?= cc
CLANG   ?= clang
BPFTOOL ?= bpftool

PKGS      := libbpf libnftnl libmnl jansson yaml-0.1 libcurl libmicrohttpd libcap
CFLAGS    ?= -O2 -g
CFLAGS    += $(SAN_FLAGS) -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	     -std=gnu11 -D_GNU_SOURCE -Iagent -Ibpf -I$(BUILD)/skel
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lnftnl -lmnl -ljansson -lyaml -lcurl -lmicrohttpd -lcap) -lpthread -lelf -lz
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Wno-unused-function \
	      -I vmlinux/$(ARCH) -I bpf -I bpf/lib

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/skel/%.skel.h,$(BPF_SRCS))
# agent/cmd holds the two programs; every other agent file goes into libsluice.a.
LIB_SRCS  := $(shell find agent -name '*.c' -not -path 'agent/cmd/*' | sort)
LIB_OBJS  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
# selftests/unit: no root, no kernel; selftests/kernel: netlink and bpf_prog_test_run.
TEST_SRCS := $(wildcard selftests/unit/test_*.c selftests/kernel/test_*.c)
TEST_BINS := $(patsubst selftests/%.c,$(BUILD)/selftests/%,$(TEST_SRCS))
TOOL_SRCS := $(wildcard selftests/tools/*.c)
TOOL_BINS := $(patsubst selftests/tools/%.c,$(BUILD)/selftests/tools/%,$(TOOL_SRCS))
FORMAT_SRCS = $(shell find agent bpf selftests bench -name '*.[ch]' | sort)
# Header dependencies come from the compiler (-MMD -MP), one .d file per object.
DEPFLAGS   = -MMD -MP -MF $(@:.o=.d)

PREFIX  ?= /usr/local
DESTDIR ?=
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system

DEB_PKGS := libbpf-dev bpftool clang llvm libelf-dev zlib1g-dev libnftnl-dev libmnl-dev \
	    libjansson-dev libyaml-dev libcurl4-openssl-dev libmicrohttpd-dev libcmocka-dev libcap-dev \
	    iproute2 nftables pkg-config make gcc util-linux openssl procps curl clang-format libclang-rt-14-dev \
	    prometheus jq man-db systemd buildah debootstrap python3-yaml \
	    qemu-system-x86 busybox-static kmod ethtool iptables gnuplot-nox

.PHONY: all deps test bench demo clean format format-check install fuzz image vmtest FORCE
all: $(BUILD)/sluice-agent $(BUILD)/sluicectl

# Installs the Debian packages of design.md section 8 that are missing.
deps:
	$(Q)missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -MF $(@:.o=.d) -MT $@ -c $< -o $@.tmp.o
	$(Q)$(BPFTOOL) gen object $@ $@.tmp.o
	$(Q)rm -f $@.tmp.o

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# The skeletons exist before any agent file is compiled; after that the
# compiler's .d files say which object includes which header.
$(BUILD)/agent/%.o: agent/%.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

# Both programs print the version: git describe at build time. The header is
# rewritten only when the version changes, so an unchanged tree rebuilds nothing.
$(BUILD)/version.h: FORCE
	$(Q)mkdir -p $(@D)
	$(Q)v=$$(git describe --always --tags --dirty 2>/dev/null || echo unknown); \
	line="#define SLUICE_VERSION \"$$v\""; \
	[ -f $@ ] && [ "$$(cat $@)" = "$$line" ] || echo "$$line" >$@

$(BUILD)/agent/cmd/sluice-agent.o $(BUILD)/agent/cmd/sluicectl.o: $(BUILD)/version.h
$(BUILD)/agent/cmd/%.o: CFLAGS += -I$(BUILD)

FORCE:

$(BUILD)/libsluice.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/sluice-agent: $(BUILD)/agent/cmd/sluice-agent.o $(BUILD)/libsluice.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/sluicectl: $(BUILD)/agent/cmd/sluicectl.o $(BUILD)/libsluice.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

define build_test
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -MF $@.d -MT $@ $< $(BUILD)/libsluice.a $(LDLIBS) -lcmocka -o $@
endef

$(BUILD)/selftests/unit/%: selftests/unit/%.c $(BUILD)/libsluice.a | $(SKELS)
	$(build_test)

$(BUILD)/selftests/kernel/%: selftests/kernel/%.c $(BUILD)/libsluice.a | $(SKELS)
	$(build_test)

$(BUILD)/selftests/tools/%: selftests/tools/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -MF $@.d -MT $@ $< $(TOOL_LDLIBS) -o $@

# Tools that need libraries say so here.
$(BUILD)/selftests/tools/fake-apiserver: TOOL_LDLIBS = -lmicrohttpd -ljansson -lgnutls -lpthread

# Every test; the last line printed is "N passed, N failed[, N skipped]".
test: all $(TEST_BINS) $(TOOL_BINS)
	$(Q)BUILD=$(BUILD) selftests/run.sh "$(TEST)"

# The tests inside a VM on another kernel (Documentation/vmtest.md): built
# here, run in the guest. KERNEL= vmlinuz paths or Debian kernel versions
# (default the newest bookworm 6.1), VMTEST= test patterns (default below),
# VMTEST_BENCH=0 skips the short bench.
VMTEST_DEFAULT := kernel/ clusterip external topology ratelimit datapaths switch_flows sctp
VMTEST ?= $(VMTEST_DEFAULT)
vmtest: all $(TEST_BINS) $(TOOL_BINS) $(BUILD)/bench/tc-cost $(BUILD)/bench/udp-flood
	$(Q)BUILD=$(BUILD) KERNEL="$(KERNEL)" VMTEST="$(VMTEST)" tools/vmtest/run.sh

# One table of side-by-side ratios (Documentation/bench.md); needs root.
bench: all $(TOOL_BINS) $(BUILD)/bench/tc-cost $(BUILD)/bench/udp-flood $(BUILD)/bench/change-probe
	$(Q)BUILD=$(BUILD) bench/run.sh

$(BUILD)/bench/%: bench/%.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -MF $@.d -MT $@ $< $(LDLIBS) -o $@

# libFuzzer harnesses (fuzz/*.c), clang with ASan and UBSan, over the agent's
# parsers; seeds from examples/ and fuzz/seeds/. FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 30
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	      -std=gnu11 -D_GNU_SOURCE -Iagent -Ibpf -I$(BUILD)/skel
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_LIB_SRCS := $(filter agent/lib/% agent/core/% agent/source/%,$(LIB_SRCS))
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(FUZZ_LIB_SRCS))

$(FUZZ_BUILD)/agent/%.o: agent/%.c | $(SKELS)
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_FLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ $(LDLIBS) -o $@

fuzz: $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))
	$(Q)FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh $(FUZZ_TARGETS)

demo: all $(TOOL_BINS)
	$(Q)examples/demo.sh

# The binaries, sluice-agent(8) and sluicectl(8), and the systemd unit with
# the path of the agent filled in.
install: all
	$(Q)install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR)
	$(Q)install -m 0755 $(BUILD)/sluice-agent $(DESTDIR)$(PREFIX)/sbin/sluice-agent
	$(Q)install -m 0755 $(BUILD)/sluicectl $(DESTDIR)$(PREFIX)/bin/sluicectl
	$(Q)install -m 0644 man/sluice-agent.8 man/sluicectl.8 $(DESTDIR)$(MANDIR)/man8/
	$(Q)sed 's|@sbindir@|$(PREFIX)/sbin|g' deploy/sluice-agent.service.in \
		>$(DESTDIR)$(UNITDIR)/sluice-agent.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/sluice-agent.service

# An OCI archive of both programs and their runtime libraries, from Debian
# packages (debootstrap cached in $(BUILD)/image): $(BUILD)/sluice-agent-VERSION.oci.tar.
image: all
	$(Q)tools/image/build.sh $(BUILD)

clean:
	$(Q)rm -rf $(BUILD)

format:
	$(Q)clang-format -i $(FORMAT_SRCS)

# Fails on any deviation from .clang-format, naming the files.
format-check:
	$(Q)bad=$$(for f in $(FORMAT_SRCS); do \
		clang-format --dry-run --Werror $$f >/dev/null 2>&1 || echo $$f; done); \
	if [ -n "$$bad" ]; then echo "format-check: not formatted (make format):"; \
		echo "$$bad" | sed 's/^/  /'; exit 1; fi; \
	echo "format-check: $(words $(FORMAT_SRCS)) files formatted"

# (not under $(BUILD)/image: the image's root has directories named *.d)
-include $(shell find $(BUILD) -path $(BUILD)/image -prune -o -name '*.d' -type f -print 2>/dev/null)
