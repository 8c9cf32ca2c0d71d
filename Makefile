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

BUILD   := build
ARCH    := x86
CC      ?= cc
CLANG   ?= clang
BPFTOOL ?= bpftool

PKGS      := libbpf libnftnl libmnl jansson yaml-0.1 libcurl libmicrohttpd
CFLAGS    ?= -O2 -g
CFLAGS    += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	     -std=gnu11 -D_GNU_SOURCE -Iagent -Ibpf -I$(BUILD)/skel
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lnftnl -lmnl -ljansson -lyaml -lcurl -lmicrohttpd) -lpthread -lelf -lz
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wno-unused-function \
	      -I vmlinux/$(ARCH) -I bpf -I bpf/lib

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/skel/%.skel.h,$(BPF_SRCS))
BPF_HDRS  := $(wildcard bpf/*.h bpf/lib/*.h)
AGENT_HDRS := $(wildcard agent/*.h)
LIB_SRCS  := $(filter-out agent/main.c agent/sluicectl.c,$(wildcard agent/*.c))
LIB_OBJS  := $(patsubst agent/%.c,$(BUILD)/agent/%.o,$(LIB_SRCS))
UNIT_SRCS := $(wildcard selftests/unit/test_*.c)
UNIT_BINS := $(patsubst selftests/unit/%.c,$(BUILD)/selftests/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard selftests/tools/*.c)
TOOL_BINS := $(patsubst selftests/tools/%.c,$(BUILD)/selftests/tools/%,$(TOOL_SRCS))

DEB_PKGS := libbpf-dev bpftool clang llvm libelf-dev zlib1g-dev libnftnl-dev libmnl-dev \
	    libjansson-dev libyaml-dev libcurl4-openssl-dev libmicrohttpd-dev libcmocka-dev \
	    iproute2 nftables pkg-config make gcc util-linux openssl

.PHONY: all deps test unit e2e bench demo clean format
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

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) | $(BUILD)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp.o
	$(Q)$(BPFTOOL) gen object $@ $@.tmp.o
	$(Q)rm -f $@.tmp.o

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o | $(BUILD)/skel
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

$(BUILD)/agent/%.o: agent/%.c $(AGENT_HDRS) $(BPF_HDRS) $(SKELS) | $(BUILD)/agent
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libsluice.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/sluice-agent: $(BUILD)/agent/main.o $(BUILD)/libsluice.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/sluicectl: $(BUILD)/agent/sluicectl.o $(BUILD)/libsluice.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/selftests/%: selftests/unit/%.c $(BUILD)/libsluice.a $(AGENT_HDRS) | $(BUILD)/selftests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(BUILD)/libsluice.a $(LDLIBS) -lcmocka -o $@

$(BUILD)/selftests/tools/%: selftests/tools/%.c $(wildcard selftests/tools/*.h) | $(BUILD)/selftests/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(TOOL_LDLIBS) -o $@

# Tools that need libraries say so here.
$(BUILD)/selftests/tools/fake-apiserver: TOOL_LDLIBS = -lmicrohttpd -ljansson -lpthread

$(BUILD)/bpf $(BUILD)/skel $(BUILD)/agent $(BUILD)/selftests $(BUILD)/selftests/tools $(BUILD)/bench:
	$(Q)mkdir -p $@

# Every test; the last line printed is "N passed, N failed".
test: all $(UNIT_BINS) $(TOOL_BINS)
	$(Q)selftests/run.sh $(TEST)

# One table of side-by-side ratios (Documentation/bench.md); needs root.
bench: all $(TOOL_BINS) $(BUILD)/bench/tc-cost
	$(Q)BUILD=$(BUILD) bench/run.sh

$(BUILD)/bench/%: bench/%.c $(SKELS) | $(BUILD)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

demo: all $(TOOL_BINS)
	$(Q)examples/demo.sh

clean:
	$(Q)rm -rf $(BUILD)

format:
	$(Q)clang-format -i agent/*.c agent/*.h bpf/*.c bpf/*.h bpf/lib/*.h selftests/unit/*.c selftests/tools/*.c
