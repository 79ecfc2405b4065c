# SPDX-License-Identifier: GPL-2.0
#
# Read after tools/testing/selftests/bpf/Makefile (make -f Makefile -f this),
# so that the BPF selftests write nothing into the kernel source tree, which
# every build directory of the harness shares (one config's artefacts must
# never reach another's guest):
#
#  - libarena's skeletons are generated in $(OUTPUT)/libarena: the caller sets
#    LIBARENA_SKEL (and LIBARENA_ASAN_SKEL where clang has BPF arena ASAN) to
#    paths there on the command line, and this recipe, which replaces the
#    Makefile's "make -C libarena", runs libarena's Makefile in that directory
#    with its sources named by LIBARENA. test_progs includes
#    "libarena/libarena.skel.h" through -I$(OUTPUT).
#  - the test modules (bpf_testmod.ko, ...) are built by the harness with
#    Kbuild's MO= into the build directory; the caller sets TEST_KMOD_TARGETS
#    empty, which drops the Makefile's in-tree test_kmods/ rules.

$(filter $(OUTPUT)/%,$(LIBARENA_SKEL) $(LIBARENA_ASAN_SKEL)):
	$(Q)mkdir -p $(@D)
	+$(MAKE) -C $(@D) -f $(CURDIR)/libarena/Makefile LIBARENA=$(CURDIR)/libarena \
		$(@F) $(LIBARENA_MAKE_ARGS)
