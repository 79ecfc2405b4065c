"""Break the series' kernel code on purpose, to see the memcg_ops subtest
that covers it fail:

    python3 selftests/mutate_kernel.py NAME apply|revert KERNEL_TREE

then `harness test --kernel-dir KERNEL_TREE -t memcg_ops/...`, then revert.
NAME: no-inheritance (inheritance, order, combine, query fail),
no-auto-detach (inheritance), update-gap (update), last-wins (combine),
inline-ask (worker_asks), no-push (over_high), sync-ignores-episode
(sync_path), no-expiry (expiry), unbounded (episode_bound: the target
recedes at each renewal), min-ignored (min_floor), no-attach-check
(unprivileged, delegation: anyone holding the map fd attaches anywhere);
and for cgroup_struct_ops (`-t cgroup_struct_ops/...`):
dealloc-unlocked (close_rmdir_race, on kernel-config/extra/lifetime.config:
KASAN reports the use-after-free; the offline detach is slowed by 200 us
between clearing the link's cgroup and waking its pollers, to widen the
window), purge-raw-index (fail_nth: a failed detach purges the wrong slot),
update-raw-index (fail_nth: an update after a purge replaces the wrong slot);
and for test_memcontrol (plain `harness test`, whose defaults must FAIL it
though the test is flaky without the series): low-ignored (memory.low
protects nothing in limit reclaim: test_memcg_low);
and for the KUnit suite memcg_high_delay (patch 7; it runs at boot, and
selftests/test_smoke.py::test_kunit_memcg_high_delay reads its result):
high-delay-overflow (the overage is squared unclamped, as before the fix);
and for memcg_high_verdict (patch 15, `-t memcg_ops/verdict_*`): defer-pays
(a deferred task reclaims and sleeps anyway: verdict_defer), no-slack
(deferrals honoured above high + slack: verdict_slack), no-payer (no task
takes a debt over, the worker pays all: verdict_payer), child-asked (the
task's own cgroup's policies decide, not the limiting level's:
verdict_child).
The tree must have the series applied; the original files are kept in
KERNEL_TREE/.mutate-backup until revert."""
import shutil
import sys
from pathlib import Path

MUT = {
 "defer-pays": ("mm/memcontrol.c",
  """\tif (memcg_bpf_high_settle(memcg, &nr_pages, in_charge))
\t\tgoto out;""",
  """\tif (memcg_bpf_high_settle(memcg, &nr_pages, in_charge) && 0) /* MUTATION */
\t\tgoto out;"""),
 "no-slack": ("mm/memcontrol.c",
  """\t\tif (usage - high <= ctx.slack &&""",
  """\t\tif (/* MUTATION: no slack */"""),
 "no-payer": ("mm/memcontrol.c",
  """\t\tif (!atomic_long_read(&iter->bpf_high_debt))
\t\t\tcontinue;""",
  """\t\tif (1 || /* MUTATION: nobody takes a debt over */
\t\t    !atomic_long_read(&iter->bpf_high_debt))
\t\t\tcontinue;"""),
 "child-asked": ("mm/memcontrol.c",
  """\t\t    __memcg_bpf_high_defer(limit, &ctx)) {""",
  """\t\t    __memcg_bpf_high_defer(memcg_bpf_ops_effective(memcg) ?
\t\t\t\t\t   memcg : limit, &ctx)) { /* MUTATION */"""),
 "low-ignored": ("mm/vmscan.c",
  """\t\t} else if (mem_cgroup_below_low(target_memcg, memcg)) {""",
  """\t\t} else if (0 && /* MUTATION: no memory.low */
\t\t\t   mem_cgroup_below_low(target_memcg, memcg)) {"""),
 "no-attach-check": ("mm/bpf_memcontrol.c",
  """\tstruct dentry *high;
\tint err;

\thigh = lookup_one_positive_unlocked(""",
  """\tstruct dentry *high;
\tint err;

\treturn 0;\t/* MUTATION: no permission check */
\thigh = lookup_one_positive_unlocked("""),
 "no-inheritance": ("kernel/bpf/cgroup.c",
  """\t\t/* reverse pre-ordering progs at this cgroup level */
\t\tfor (i = bstart + 1, j = init_bstart; i < j; i++, j--)
\t\t\tswap(progs->items[i], progs->items[j]);

\t} while ((p = cgroup_parent(p)));

\t*array = progs;""",
  """\t\t/* reverse pre-ordering progs at this cgroup level */
\t\tfor (i = bstart + 1, j = init_bstart; i < j; i++, j--)
\t\t\tswap(progs->items[i], progs->items[j]);

\t\t/* MUTATION: struct_ops are not inherited */
\t\tif (cgroup_bpf_is_struct_ops_atype(atype))
\t\t\tbreak;
\t} while ((p = cgroup_parent(p)));

\t*array = progs;"""),
 "no-auto-detach": ("kernel/bpf/cgroup.c",
  """\tlockdep_assert_held(&cgroup_mutex);

\tfor (atype = 0; atype < MAX_CGROUP_BPF_ATTACH_TYPE; atype++) {
\t\tif (!cgroup_bpf_is_struct_ops_atype(atype))""",
  """\tlockdep_assert_held(&cgroup_mutex);

\treturn;\t/* MUTATION: no detach at offline */
\tfor (atype = 0; atype < MAX_CGROUP_BPF_ATTACH_TYPE; atype++) {
\t\tif (!cgroup_bpf_is_struct_ops_atype(atype))"""),
 "update-gap": ("kernel/bpf/cgroup.c",
  """\tpl->kdata = bpf_struct_ops_map_kdata(new_map);
\treplace_effective_prog(cgrp, st_link->atype, pl);""",
  """\t/* MUTATION: out of the arrays, then back in: a gap */
\tpl->kdata = NULL;
\tWARN_ON(update_effective_progs(cgrp, st_link->atype));
\tpl->kdata = bpf_struct_ops_map_kdata(new_map);
\tWARN_ON(update_effective_progs(cgrp, st_link->atype));"""),
 "inline-ask": ("mm/memcontrol.c",
  """\t\tif (mem_high || swap_high) {
\t\t\t/*
\t\t\t * The allocating tasks in this cgroup will need to do""",
  """\t\t/* MUTATION: the charging task asks the policies */
\t\tif (in_task() && memcg_bpf_ops_effective(memcg))
\t\t\t__memcg_bpf_nr_pages_over_high(memcg);
\t\tif (mem_high || swap_high) {
\t\t\t/*
\t\t\t * The allocating tasks in this cgroup will need to do"""),
 "no-push": ("mm/bpf_memcontrol.c",
  """\t\tmemcg_bpf_high_start(memcg, nr, until);
\t\tmemcg_bpf_reclaim_high(memcg);""",
  """\t\tmemcg_bpf_high_start(memcg, nr, until);
\t\t/* MUTATION: nothing reclaimed at the start */
\t\tmemcg_memory_event(memcg, MEMCG_HIGH);
\t\tmemcg_bpf_reclaim_high(root_mem_cgroup);"""),
 "sync-ignores-episode": ("mm/memcontrol.c",
  """\t\tmem_high = page_counter_read(&memcg->memory) >
\t\t\tmemcg_high(memcg);""",
  """\t\tmem_high = page_counter_read(&memcg->memory) >
\t\t\tREAD_ONCE(memcg->memory.high); /* MUTATION: charges ignore it */"""),
 "no-expiry": ("mm/bpf_memcontrol.h",
  """\tif (!high || time_after_eq(jiffies, until))""",
  """\tif (!high) /* MUTATION: the lease never runs out */"""),
 "unbounded": ("mm/bpf_memcontrol.c",
  """\thigh = memcg_bpf_high(memcg);
\tif (high == PAGE_COUNTER_MAX) {
\t\tusage = page_counter_read(&memcg->memory);""",
  """\thigh = memcg_bpf_high(memcg);
\tif (1) { /* MUTATION: the target recedes at each renewal */
\t\tusage = page_counter_read(&memcg->memory);"""),
 "min-ignored": ("mm/bpf_memcontrol.h",
  """\treturn max(high, READ_ONCE(memcg->memory.min));""",
  """\treturn high; /* MUTATION: memory.min ignored */"""),
 "last-wins": ("mm/bpf_memcontrol.c",
  """\t\t\t\tnr = max_t(unsigned long, nr,
\t\t\t\t\t   ops->memcg_nr_pages_over_high(memcg));""",
  """\t\t\t\tnr = ops->memcg_nr_pages_over_high(memcg); /* MUTATION: last wins */"""),
 "dealloc-unlocked": [
  ("kernel/bpf/cgroup.c",
   """\tcgroup_lock();
\tcgroup_struct_ops_link_detach(st_link);
\tcgroup_unlock();
\tkfree(st_link);""",
   """\t/* MUTATION: the cgroup read without cgroup_mutex */
\tif (READ_ONCE(st_link->cg_link.cgroup))
\t\tcgroup_struct_ops_link_detach_op(link);
\tkfree(st_link);"""),
  ("kernel/bpf/cgroup.c",
   """\tst_link->cg_link.cgroup = NULL;
\tcgroup_put(cgrp);
\tbpf_map_put(map);
\twake_up_interruptible_poll(&st_link->wait_hup, EPOLLHUP);""",
   """\tWRITE_ONCE(st_link->cg_link.cgroup, NULL);
\tcgroup_put(cgrp);
\tbpf_map_put(map);
\tudelay(200);\t/* MUTATION: the window widened */
\twake_up_interruptible_poll(&st_link->wait_hup, EPOLLHUP);"""),
  ("kernel/bpf/cgroup.c",
   """#include <linux/bpf_verifier.h>\n""",
   """#include <linux/bpf_verifier.h>\n#include <linux/delay.h>\n"""),
 ],
 "purge-raw-index": ("kernel/bpf/cgroup.c",
  """\t\t\titem = struct_ops_item_at(progs, pos);
\t\t\tif (!WARN_ONCE(!item,""",
  """\t\t\titem = &progs->items[pos]; /* MUTATION: placeholders counted */
\t\t\tif (!WARN_ONCE(!item,"""),
 "update-raw-index": ("kernel/bpf/cgroup.c",
  """\t\tif (cgroup_bpf_is_struct_ops_atype(atype))
\t\t\titem = struct_ops_item_at(progs, pos);
\t\telse
\t\t\titem = &progs->items[pos];""",
  """\t\titem = &progs->items[pos]; /* MUTATION: placeholders counted */"""),
 "high-delay-overflow": ("mm/memcontrol.c",
  """\tmax_overage = min(max_overage, MEMCG_MAX_OVERAGE);
\tpenalty_jiffies = max_overage * max_overage * HZ;""",
  """\tpenalty_jiffies = max_overage * max_overage * HZ; /* MUTATION: may wrap */"""),
}
name, action, tree = sys.argv[1], sys.argv[2], Path(sys.argv[3])
edits = MUT[name] if isinstance(MUT[name], list) else [MUT[name]]
(tree / ".mutate-backup").mkdir(exist_ok=True)
for rel in dict.fromkeys(rel for rel, _, _ in edits):
    f = tree / rel
    bak = tree / ".mutate-backup" / rel.replace("/", "_")
    if action == "apply":
        s = f.read_text()
        for _, old, new in (e for e in edits if e[0] == rel):
            assert s.count(old) == 1, (name, "anchor not found once", old[:60])
            s = s.replace(old, new)
        shutil.copy2(f, bak)
        f.write_text(s)
    else:
        shutil.copy(bak, f)  # content back; a new mtime rebuilds it
print("applied" if action == "apply" else "reverted", name)
