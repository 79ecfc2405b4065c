// SPDX-License-Identifier: GPL-2.0
/*
 * sigagent: the experiment's control arm for the sample (harness/guest/
 * experiment.py, arms sigagent and sigagent:nb). It sees what the sample
 * sees, the same stalls of the high cgroup's tasks through the same
 * tracepoint (sigagent.bpf.c), but acts as a userspace agent can without
 * the series: when a triggered period begins it writes the lows' memory.high,
 * usage - PAGES pages (never below their memory.min), which is what an
 * episode of the sample sets; when the period ends it writes the old value
 * back. With --nonblock the write is O_NONBLOCK (the limit is set, the lows'
 * own charges reclaim); without, the write reclaims down to the limit in the
 * agent's context, as memory.high writes do.
 *
 *   sigagent [--nonblock] [--window-ms MS] LOWS HIGH THRESHOLD PAGES
 *
 * Prints JSON lines, times in CLOCK_MONOTONIC seconds: "armed" first; for
 * each throttle and release its decision time "t" (the BPF program's, as
 * the sample prints) and the write's start and end; "exit" after the
 * release at SIGINT or SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "sigagent.skel.h"

struct sigagent_trigger {
	__u64 ns;
	__u64 pages;
};

static volatile sig_atomic_t stop;
static struct sigagent *skel;
static const char *lows;
static int nonblock, throttled;
static unsigned long long pages, page_size;
static char old_high[64] = "max";

static void on_signal(int sig)
{
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int read_file(const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", lows, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static unsigned long long read_u64(const char *name)
{
	char buf[64];

	if (read_file(name, buf, sizeof(buf)) || !strcmp(buf, "max"))
		return ULLONG_MAX;
	return strtoull(buf, NULL, 10);
}

/* Write memory.high; returns 0 or errno, and the write's start and end. */
static int write_high(const char *value, int flags, double *t0, double *t1)
{
	char path[PATH_MAX];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/memory.high", lows);
	*t0 = now_s();
	fd = open(path, O_WRONLY | flags);
	if (fd < 0) {
		err = errno;
	} else {
		if (write(fd, value, strlen(value)) < 0)
			err = errno;
		close(fd);
	}
	*t1 = now_s();
	return err;
}

static int on_trigger(void *ctx, void *data, size_t size)
{
	const struct sigagent_trigger *e = data;
	unsigned long long cur, min, high, target;
	double t0, t1;
	char value[32];
	int err;

	if (size < sizeof(*e))
		return 0;
	if (throttled) {
		printf("{\"t\": %.6f, \"action\": \"event\"}\n", e->ns / 1e9);
		return 0;
	}
	cur = read_u64("memory.current");
	min = read_u64("memory.min");
	high = read_u64("memory.high");
	if (min == ULLONG_MAX)
		min = 0;
	/* an episode's target: usage - PAGES, never below memory.min */
	target = cur != ULLONG_MAX && cur > pages * page_size ? cur - pages * page_size : 0;
	if (target < min)
		target = min;
	if (target > high)
		target = high;
	snprintf(value, sizeof(value), "%llu", target);
	err = write_high(value, nonblock ? O_NONBLOCK : 0, &t0, &t1);
	throttled = 1;
	printf("{\"t\": %.6f, \"action\": \"throttle\", \"pages\": %llu, \"current\": %llu, "
	       "\"value\": %llu, \"nonblock\": %s, \"write_start\": %.6f, \"write_end\": %.6f, "
	       "\"errno\": %d}\n", e->ns / 1e9, (unsigned long long)e->pages, cur, target,
	       nonblock ? "true" : "false", t0, t1, err);
	fflush(stdout);
	return 0;
}

static void release(const char *why)
{
	double t0, t1;
	int err;

	err = write_high(old_high, 0, &t0, &t1);
	throttled = 0;
	printf("{\"t\": %.6f, \"action\": \"release\", \"why\": \"%s\", \"value\": \"%s\", "
	       "\"write_start\": %.6f, \"write_end\": %.6f, \"errno\": %d}\n",
	       skel->bss->triggered_until_ns / 1e9, why, old_high, t0, t1, err);
	fflush(stdout);
}

static int parse_u64(const char *s, const char *what, unsigned long long min,
		     unsigned long long max, unsigned long long *val)
{
	char *end;

	errno = 0;
	*val = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || *val < min || *val > max) {
		fprintf(stderr, "sigagent: %s must be an integer in %llu .. %llu, not '%s'\n",
			what, min, max, s);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "window-ms", required_argument, NULL, 'w' },
		{ "nonblock", no_argument, NULL, 'n' },
		{}
	};
	unsigned long long window_ms = 1000, threshold;
	struct ring_buffer *rb = NULL;
	struct bpf_link *link = NULL;
	int high_fd = -1, opt, err = 1;
	struct sigaction sa = { .sa_handler = on_signal };
	__u32 zero = 0;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'w') {
			if (parse_u64(optarg, "--window-ms", 1, 60000, &window_ms))
				return 2;
		} else if (opt == 'n') {
			nonblock = 1;
		} else {
			return 2;
		}
	}
	if (argc - optind != 4) {
		fprintf(stderr, "usage: %s [--nonblock] [--window-ms MS] LOWS HIGH THRESHOLD "
			"PAGES\n", argv[0]);
		return 2;
	}
	lows = argv[optind];
	if (parse_u64(argv[optind + 2], "THRESHOLD", 1, ULLONG_MAX, &threshold) ||
	    parse_u64(argv[optind + 3], "PAGES", 1, UINT_MAX, &pages))
		return 2;
	page_size = sysconf(_SC_PAGESIZE);
	if (read_file("memory.high", old_high, sizeof(old_high))) {
		fprintf(stderr, "sigagent: %s/memory.high: %s\n", lows, strerror(errno));
		return 2;
	}
	high_fd = open(argv[optind + 1], O_RDONLY | O_DIRECTORY);
	if (high_fd < 0) {
		fprintf(stderr, "sigagent: %s: %s\n", argv[optind + 1], strerror(errno));
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	skel = sigagent__open();
	if (!skel) {
		fprintf(stderr, "sigagent: opening the BPF object: %s\n", strerror(errno));
		goto out;
	}
	skel->bss->threshold = threshold;
	skel->bss->window_ns = window_ms * 1000000ULL;
	if (sigagent__load(skel)) {
		fprintf(stderr, "sigagent: loading the BPF object: %s\n", strerror(errno));
		goto out;
	}
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.high_cgroup), &zero, &high_fd, BPF_ANY)) {
		fprintf(stderr, "sigagent: setting HIGH in the cgroup array: %s\n",
			strerror(errno));
		goto out;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.triggers), on_trigger, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "sigagent: ring buffer: %s\n", strerror(errno));
		goto out;
	}
	link = bpf_program__attach(skel->progs.count_stalls);
	if (!link) {
		fprintf(stderr, "sigagent: attaching to memcg:mod_memcg_lruvec_state: %s\n",
			strerror(errno));
		goto out;
	}
	printf("{\"t\": %.6f, \"action\": \"armed\", \"threshold\": %llu, \"window_ms\": %llu, "
	       "\"pages\": %llu, \"nonblock\": %s, \"restore\": \"%s\"}\n", now_s(), threshold,
	       window_ms, pages, nonblock ? "true" : "false", old_high);
	fflush(stdout);
	err = 0;
	while (!stop) {
		int timeout = 100, r;

		if (throttled) {
			unsigned long long until = skel->bss->triggered_until_ns, t = now_ns();

			if (until <= t) {
				release("period over");
				continue;
			}
			timeout = (until - t) / 1000000 + 1;
		}
		r = ring_buffer__poll(rb, timeout);
		if (r < 0 && r != -EINTR && !stop) {
			fprintf(stderr, "sigagent: ring_buffer__poll: %s\n", strerror(-r));
			err = 1;
			break;
		}
		fflush(stdout);
	}
out:
	bpf_link__destroy(link);
	if (throttled)
		release("exit");
	if (skel)
		printf("{\"t\": %.6f, \"action\": \"exit\", \"triggers\": %llu, \"lost\": %llu}\n",
		       now_s(), skel->bss->nr_triggers, skel->bss->nr_lost);
	ring_buffer__free(rb);
	sigagent__destroy(skel);
	close(high_fd);
	return err;
}
