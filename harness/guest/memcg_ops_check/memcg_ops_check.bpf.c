// SPDX-License-Identifier: GPL-2.0
/*
 * A memcg_bpf_ops that only counts: how often each memcg is asked about,
 * and the online/offline callbacks. memcg_ops_check.c attaches it to a
 * cgroup and reads the counters to see where the kernel called it, and
 * leases episodes with the syscall program below, which is what makes the
 * kernel ask.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

#define ENOENT 2

int bpf_memcg_high_lease(struct mem_cgroup *memcg, __u64 ttl_ns) __ksym;
struct cgroup *bpf_cgroup_from_id(__u64 cgid) __ksym;
void bpf_cgroup_release(struct cgroup *cgrp) __ksym;
struct mem_cgroup *bpf_get_mem_cgroup(struct cgroup_subsys_state *css) __ksym;
void bpf_put_mem_cgroup(struct mem_cgroup *memcg) __ksym;

/* cgroup id of the memcg -> memcg_nr_pages_over_high() calls */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u64);
} over_high_calls SEC(".maps");

__u64 over_high_total;
__u64 online_calls;
__u64 offline_calls;
__u64 last_online_id;
__u64 last_offline_id;

static __u64 memcg_id(struct mem_cgroup *memcg)
{
	return memcg->css.cgroup->kn->id;
}

SEC("struct_ops/memcg_nr_pages_over_high")
unsigned int BPF_PROG(check_over_high, struct mem_cgroup *memcg)
{
	__u64 id = memcg_id(memcg), one = 1, *n;

	__sync_fetch_and_add(&over_high_total, 1);
	n = bpf_map_lookup_elem(&over_high_calls, &id);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&over_high_calls, &id, &one, BPF_NOEXIST);
	return 0;
}

SEC("struct_ops/handle_cgroup_online")
void BPF_PROG(check_online, struct mem_cgroup *memcg)
{
	__sync_fetch_and_add(&online_calls, 1);
	last_online_id = memcg_id(memcg);
}

SEC("struct_ops/handle_cgroup_offline")
void BPF_PROG(check_offline, struct mem_cgroup *memcg)
{
	__sync_fetch_and_add(&offline_calls, 1);
	last_offline_id = memcg_id(memcg);
}

SEC(".struct_ops.link")
struct memcg_bpf_ops check_ops = {
	.memcg_nr_pages_over_high = (void *)check_over_high,
	.handle_cgroup_online = (void *)check_online,
	.handle_cgroup_offline = (void *)check_offline,
};

/*
 * A policy that only answers: memcg_nr_pages_over_high() is `answer` for
 * every memcg. harness bench measures with it what a policy costs.
 */
__u32 answer;

SEC("struct_ops/memcg_nr_pages_over_high")
unsigned int BPF_PROG(answer_over_high, struct mem_cgroup *memcg)
{
	return answer;
}

SEC(".struct_ops.link")
struct memcg_bpf_ops answer_ops = {
	.memcg_nr_pages_over_high = (void *)answer_over_high,
};

struct lease_args {
	__u64 cgroup_id;
	__u64 ttl_ns;
};

/* bpf_memcg_high_lease() on a cgroup by id: its return value, or -ENOENT. */
SEC("syscall")
int lease(struct lease_args *args)
{
	struct mem_cgroup *memcg;
	struct cgroup *cgrp;
	int ret;

	cgrp = bpf_cgroup_from_id(args->cgroup_id);
	if (!cgrp)
		return -ENOENT;
	memcg = bpf_get_mem_cgroup(&cgrp->self);
	bpf_cgroup_release(cgrp);
	if (!memcg)
		return -ENOENT;
	ret = bpf_memcg_high_lease(memcg, args->ttl_ns);
	bpf_put_mem_cgroup(memcg);
	return ret;
}
