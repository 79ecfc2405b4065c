// SPDX-License-Identifier: GPL-2.0
/*
 * The signal of the series' sample (samples/bpf/memcg.bpf.c), for a
 * userspace agent: the same stalls of the high cgroup's own tasks
 * (PGSCAN_DIRECT, WORKINGSET_REFAULT_ANON/_FILE through the
 * memcg:mod_memcg_lruvec_state tracepoint, filtered on the current task's
 * cgroup), the same threshold per window and the same triggered period
 * (until one window after the last stall counted). Instead of answering
 * memcg_nr_pages_over_high, each start of a triggered period is sent to
 * userspace through a ring buffer (sigagent.c writes the lows'
 * memory.high); the period's end is triggered_until_ns, which userspace
 * reads from the mapped .bss.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} high_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} triggers SEC(".maps");

struct sigagent_trigger {
	__u64 ns;	/* when the triggered period began (CLOCK_MONOTONIC) */
	__u64 pages;	/* pages counted in the window then */
};

__u64 threshold;
__u64 window_ns;

__u64 window_start_ns;
__u64 window_pages;
__u64 triggered_until_ns;
__u64 nr_triggers;
__u64 nr_lost;		/* triggers the ring buffer had no room for */

static void count_stall(long pages)
{
	struct sigagent_trigger *e;
	__u64 now, sum;

	if (pages <= 0 || bpf_current_task_under_cgroup(&high_cgroup, 0) != 1)
		return;
	now = bpf_ktime_get_ns();
	if (now - window_start_ns > window_ns) {
		window_start_ns = now;
		window_pages = 0;
	}
	sum = __sync_add_and_fetch(&window_pages, pages);
	if (sum <= threshold)
		return;
	if (triggered_until_ns <= now) {
		__sync_fetch_and_add(&nr_triggers, 1);
		e = bpf_ringbuf_reserve(&triggers, sizeof(*e), 0);
		if (e) {
			e->ns = now;
			e->pages = sum;
			bpf_ringbuf_submit(e, 0);
		} else {
			__sync_fetch_and_add(&nr_lost, 1);
		}
	}
	triggered_until_ns = now + window_ns;
}

SEC("tp/memcg/mod_memcg_lruvec_state")
int count_stalls(struct trace_event_raw_memcg_rstat_stats *ctx)
{
	switch (ctx->item) {
	case PGSCAN_DIRECT:
	case WORKINGSET_REFAULT_ANON:
	case WORKINGSET_REFAULT_FILE:
		count_stall(ctx->val);
		break;
	}
	return 0;
}
