"""Break the series' kernel code on purpose, to see the memcg_ops subtest
that covers it fail:

    python3 selftests/mutate_kernel.py NAME apply|revert KERNEL_TREE

then `harness test --kernel-dir KERNEL_TREE -t memcg_ops/...`, then revert.
NAME: no-inheritance (inheritance, order, combine, query fail),
no-auto-detach (inheritance), update-gap (update), last-wins (combine),
inline-throttle (no_lock_throttle), unbounded (episode_bound),
min-ignored (min_floor), cgroup-wide-penalty (task_penalty).
The tree must have the series applied; the original file is kept in
KERNEL_TREE/.mutate-backup until revert."""
import shutil
import sys
from pathlib import Path

MUT = {
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
 "inline-throttle": ("mm/memcontrol.c",
  """\tif (current->memcg_nr_pages_over_high > MEMCG_CHARGE_BATCH &&
\t    !(current->flags & PF_MEMALLOC) &&
\t    gfpflags_allow_blocking(gfp_mask))
\t\thandle_over_high(gfp_mask, false);""",
  """\tif ((current->memcg_nr_pages_over_high > MEMCG_CHARGE_BATCH ||
\t     memcg_bpf_ops_effective(orig_memcg)) && /* MUTATION: inline */
\t    !(current->flags & PF_MEMALLOC) &&
\t    gfpflags_allow_blocking(gfp_mask)) {
\t\tcurrent->memcg_nr_pages_bpf += batch;
\t\thandle_over_high(gfp_mask, true);
\t}"""),
 "unbounded": ("mm/bpf_memcontrol.c",
  """\t\tif (READ_ONCE(memcg->bpf_high))
\t\t\tcontinue;
\t\tusage = page_counter_read(&memcg->memory);
\t\tcmpxchg(&memcg->bpf_high, 0, usage > nr ? usage - nr : 1);""",
  """\t\tusage = page_counter_read(&memcg->memory); /* MUTATION: target recedes */
\t\tWRITE_ONCE(memcg->bpf_high, usage > nr ? usage - nr : 1);"""),
 "min-ignored": ("mm/bpf_memcontrol.h",
  """\treturn max(high, READ_ONCE(memcg->memory.min));""",
  """\treturn high; /* MUTATION: memory.min ignored */"""),
 "cgroup-wide-penalty": ("mm/memcontrol.c",
  """\t\tif (bpf)
\t\t\tnr_pages += bpf_pages;""",
  """\t\tif (bpf) {
\t\t\tnr_pages += bpf_pages;
\t\t\t/* MUTATION: the penalty scaled by the cgroup's whole overage */
\t\t\tnr_pages = max_t(unsigned long, nr_pages,
\t\t\t\t\t page_counter_read(&memcg->memory) -
\t\t\t\t\t min(page_counter_read(&memcg->memory),
\t\t\t\t\t     memcg_bpf_high(memcg)));
\t\t}"""),
 "last-wins": ("mm/bpf_memcontrol.c",
  """\t\t\t\tnr = max_t(unsigned long, nr,
\t\t\t\t\t   ops->memcg_nr_pages_over_high(memcg));""",
  """\t\t\t\tnr = ops->memcg_nr_pages_over_high(memcg); /* MUTATION: last wins */"""),
}
name, action, tree = sys.argv[1], sys.argv[2], Path(sys.argv[3])
rel, old, new = MUT[name]
f = tree / rel
(tree / ".mutate-backup").mkdir(exist_ok=True)
bak = tree / ".mutate-backup" / rel.replace("/", "_")
if action == "apply":
    s = f.read_text()
    assert s.count(old) == 1, (name, "anchor not found once")
    shutil.copy2(f, bak)
    f.write_text(s.replace(old, new))
    print("applied", name)
else:
    shutil.copy(bak, f)  # content back; a new mtime rebuilds it
    print("reverted", name)
