// SPDX-License-Identifier: GPL-2.0
/*
 * memcg_ops_check [CGROUP2_MOUNT]: attach a counting memcg_bpf_ops to a
 * test cgroup with bpf_map__attach_cgroup_opts(), watch it apply to a
 * child created afterwards, detach it, and print what was seen as JSON.
 * It judges nothing: the harness asserts on the output.
 *
 * memcg_ops_check --hold CGROUP: attach the policy, which answers 0, to
 * CGROUP, and lease an episode of CGROUP and of every cgroup below it
 * every LEASE_EVERY_MS, for LEASE_TTL_MS (the kernel asks the policy at
 * each); print {"attach_err": E} and, once stdin is closed, how often the
 * policy was asked, as {"over_high_total": N, "leases": L,
 * "lease_errors": E}. The harness holds it attached above
 * test_memcontrol's cgroups this way.
 *
 * memcg_ops_check --hold-answer CGROUP N: the same with a policy that
 * only answers N (harness bench, the experiment's noop and always arms).
 */
#define _GNU_SOURCE	/* nftw() */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "memcg_ops_check.skel.h"

#define CHARGE_BYTES	(32UL << 20)
#define LEASE_EVERY_MS	250
#define LEASE_TTL_MS	1000

static char P[512], C[512], G[512], A[512], R[512];

static int write_file(const char *dir, const char *file, const char *val)
{
	char path[600];
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

static unsigned long long cg_id(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (unsigned long long)st.st_ino;
}

static unsigned long long calls_for(struct memcg_ops_check *skel, const char *path)
{
	__u64 id = cg_id(path), v = 0;

	bpf_map__lookup_elem(skel->maps.over_high_calls, &id, sizeof(id), &v, sizeof(v), 0);
	return v;
}

/* Charge CHARGE_BYTES of anonymous memory in cgroup @cg, from a child. */
static int charge_in(const char *cg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char *p;

		if (write_file(cg, "cgroup.procs", "0"))
			_exit(2);
		p = mmap(NULL, CHARGE_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(3);
		memset(p, 1, CHARGE_BYTES);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int link_cgroup_id(struct bpf_link *link, unsigned long long *id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int err;

	err = bpf_link_get_info_by_fd(bpf_link__fd(link), &info, &len);
	if (err)
		return err;
	*id = info.struct_ops.cgroup_id;
	return 0;
}

/* EPOLLHUP on the link fd within @ms milliseconds? */
static int hup_within(struct bpf_link *link, int ms)
{
	struct pollfd pfd = { .fd = bpf_link__fd(link), .events = POLLHUP };

	return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLHUP);
}

static int attach_map(struct bpf_map *map, const char *cg, struct bpf_link **link)
{
	int fd = open(cg, O_RDONLY | O_DIRECTORY);
	int err = 0;

	if (fd < 0)
		return -errno;
	*link = bpf_map__attach_cgroup_opts(map, fd, NULL);
	if (!*link)
		err = -errno;
	close(fd);
	return err;
}

static int attach(struct memcg_ops_check *skel, const char *cg, struct bpf_link **link)
{
	return attach_map(skel->maps.check_ops, cg, link);
}

struct lease_args {
	__u64 cgroup_id;
	__u64 ttl_ns;
};

static struct memcg_ops_check *lease_skel;
static unsigned long long nr_leases, nr_lease_errors;

/* bpf_memcg_high_lease() on the cgroup @path: its return value. */
static int lease(const char *path, unsigned long long ttl_ms)
{
	struct lease_args args = { .ttl_ns = ttl_ms * 1000000ULL };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
	struct stat st;
	int err;

	if (stat(path, &st))
		return -errno;
	args.cgroup_id = st.st_ino;
	err = bpf_prog_test_run_opts(bpf_program__fd(lease_skel->progs.lease), &opts);
	return err ?: (int)opts.retval;
}

static int lease_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type != FTW_D)
		return 0;
	if (lease(path, LEASE_TTL_MS))
		nr_lease_errors++;	/* e.g. a cgroup being removed */
	else
		nr_leases++;
	return 0;
}

/* Attach check_ops, or answer_ops answering @answer if @answer >= 0. */
static int hold(const char *cg, long answer)
{
	struct pollfd in = { .fd = 0, .events = POLLIN };
	struct memcg_ops_check *skel;
	struct bpf_link *link = NULL;
	char buf[64];
	int err;

	skel = memcg_ops_check__open_and_load();
	if (!skel) {
		printf("{\"load_errno\": %d}\n", errno);
		return 1;
	}
	if (answer >= 0) {
		skel->bss->answer = answer;
		err = attach_map(skel->maps.answer_ops, cg, &link);
	} else {
		err = attach(skel, cg, &link);
	}
	printf("{\"attach_err\": %d}\n", err);
	fflush(stdout);
	lease_skel = skel;
	while (!err) {
		if (poll(&in, 1, LEASE_EVERY_MS) == 0) {
			nftw(cg, lease_one, 16, FTW_PHYS);
			continue;
		}
		if (read(0, buf, sizeof(buf)) <= 0)
			break;
	}
	printf("{\"over_high_total\": %llu, \"leases\": %llu, \"lease_errors\": %llu}\n",
	       (unsigned long long)skel->bss->over_high_total, nr_leases, nr_lease_errors);
	bpf_link__destroy(link);
	memcg_ops_check__destroy(skel);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *root = argc > 1 ? argv[1] : "/sys/fs/cgroup";
	unsigned long long id = 0, online0, child_calls, child_calls_detached;
	struct bpf_link *link = NULL, *link2 = NULL, *link3 = NULL;
	struct memcg_ops_check *skel;
	int err, err2, i;

	if (argc > 2 && !strcmp(argv[1], "--hold"))
		return hold(argv[2], -1);
	if (argc > 3 && !strcmp(argv[1], "--hold-answer"))
		return hold(argv[2], atol(argv[3]));

	snprintf(P, sizeof(P), "%s/memcg_ops_check", root);
	snprintf(C, sizeof(C), "%s/child", P);
	snprintf(G, sizeof(G), "%s/gone", P);
	snprintf(A, sizeof(A), "%s/after_detach", P);
	snprintf(R, sizeof(R), "%s/memcg_ops_check_rmdir", root);
	write_file(root, "cgroup.subtree_control", "+memory");
	mkdir(P, 0755);
	write_file(P, "cgroup.subtree_control", "+memory");

	skel = memcg_ops_check__open_and_load();
	if (!skel) {
		printf("{\"load_errno\": %d}\n", errno);
		return 1;
	}
	printf("{\"load_errno\": 0");

	err = attach(skel, P, &link);
	printf(", \"attach_err\": %d", err);
	if (err)
		goto out;
	err = link_cgroup_id(link, &id);
	printf(", \"link_info_err\": %d, \"link_cgroup_id\": %llu, \"cgroup_id\": %llu",
	       err, id, cg_id(P));

	/* a second policy on the same cgroup: both in effect */
	err2 = attach(skel, P, &link2);
	printf(", \"second_attach_err\": %d", err2);
	bpf_link__destroy(link2);
	link2 = NULL;

	/* inherited by a child created afterwards */
	online0 = skel->bss->online_calls;
	mkdir(C, 0755);
	printf(", \"online_calls_before_mkdir\": %llu, \"online_calls_after_mkdir\": %llu",
	       online0, (unsigned long long)skel->bss->online_calls);
	printf(", \"last_online_id\": %llu, \"child_id\": %llu",
	       (unsigned long long)skel->bss->last_online_id, cg_id(C));
	printf(", \"charge_rc\": %d", charge_in(C));
	lease_skel = skel;
	printf(", \"lease_rc\": %d", lease(C, LEASE_TTL_MS));
	for (i = 0; i < 50 && !calls_for(skel, C); i++)
		usleep(100000);
	child_calls = calls_for(skel, C);
	printf(", \"child_calls\": %llu, \"parent_calls\": %llu", child_calls,
	       calls_for(skel, P));

	/* offline callback for a removed child (css offline is asynchronous) */
	mkdir(G, 0755);
	id = cg_id(G);
	rmdir(G);
	for (i = 0; i < 50 && skel->bss->last_offline_id != id; i++)
		usleep(100000);
	printf(", \"gone_id\": %llu, \"last_offline_id\": %llu", id,
	       (unsigned long long)skel->bss->last_offline_id);

	/* detach: the ops stop applying, the link reports EPOLLHUP */
	err = bpf_link__detach(link);
	printf(", \"detach_err\": %d, \"hup_after_detach\": %d", err, hup_within(link, 1000));
	err = link_cgroup_id(link, &id);
	printf(", \"link_cgroup_id_after_detach\": %llu", err ? ~0ULL : id);
	online0 = skel->bss->online_calls;
	printf(", \"charge_rc_detached\": %d", charge_in(C));
	printf(", \"lease_rc_detached\": %d", lease(C, LEASE_TTL_MS));
	usleep(200000);
	child_calls_detached = calls_for(skel, C);
	mkdir(A, 0755);
	printf(", \"child_calls_detached\": %llu, \"online_calls_after_detach_mkdir\": %llu",
	       child_calls_detached - child_calls,
	       (unsigned long long)skel->bss->online_calls - online0);
	err = attach(skel, P, &link2);
	printf(", \"reattach_after_detach_err\": %d", err);
	bpf_link__destroy(link2);
	link2 = NULL;

	/* rmdir of the attached cgroup detaches the link by itself */
	mkdir(R, 0755);
	err = attach(skel, R, &link3);
	printf(", \"rmdir_attach_err\": %d", err);
	if (!err) {
		rmdir(R);
		printf(", \"hup_right_after_rmdir\": %d", hup_within(link3, 0));
		printf(", \"hup_after_rmdir\": %d", hup_within(link3, 5000));
		err = link_cgroup_id(link3, &id);
		printf(", \"link_cgroup_id_after_rmdir\": %llu", err ? ~0ULL : id);
	}
out:
	printf("}\n");
	bpf_link__destroy(link3);
	bpf_link__destroy(link2);
	bpf_link__destroy(link);
	memcg_ops_check__destroy(skel);
	rmdir(A);
	rmdir(C);
	rmdir(P);
	rmdir(R);
	return 0;
}
