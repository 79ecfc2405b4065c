// SPDX-License-Identifier: GPL-2.0
/*
 * wsload: the workload of the throttling experiment's phased scenarios
 * (harness/guest/experiment.py). stress-ng reports a run's totals; the
 * scenarios need throughput per phase and times resolved to 10 ms, and a
 * task that holds its memory while it idles.
 *
 *   wsload --mb MB [--max-mb MAX] [--sample-ms MS] [--seed N] --out FILE
 *   wsload --probe PERIOD_MS --mb MB [--seed N] --out FILE
 *
 * Load mode: populate MB of anonymous memory (one write per page, in
 * order), print "ready", then write one byte to a page chosen at random
 * (uniformly: the hit rate follows the resident fraction, no all-or-nothing
 * LRU pattern), again and again, counting pages. Every MS (default 10) it
 * records (CLOCK_MONOTONIC ns, pages touched so far).
 *
 * Commands on stdin, one per line, applied between two pages:
 *   idle      stop touching, keep the memory (an idle but resident task)
 *   run       touch again
 *   mb N      grow the working set to N MB (at most MAX; the new pages
 *             are populated first, as at the start)
 *   quit      (or end of input) write FILE and exit
 * Each command is recorded with its time, and "ok CMD" is printed once it
 * is in effect.
 *
 * Probe mode: MB of memory, populated; then every PERIOD_MS one pass that
 * writes every page in order, timed: the latency of a task that touches
 * its hot set periodically. Records (start ns, duration ns) per pass.
 *
 * FILE gets {"mode", "mb", "samples": [[ns, pages]...], "events":
 * [[ns, "cmd"]...], "passes": [[ns, dur_ns]...], "page_size"}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#define MAX_EVENTS 256

static atomic_int idle;
static atomic_long want_pages;	/* the working set the control thread asks for */
static atomic_int quit;
static atomic_ullong pages;	/* touched so far, read by the sampler */
static unsigned long long (*samples)[2];
static long nr_samples, cap, sample_ms = 10;

static struct { unsigned long long ns; char cmd[64]; } events[MAX_EVENTS];
static atomic_int nr_events;

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void event(const char *cmd)
{
	int i = atomic_fetch_add(&nr_events, 1);

	if (i < MAX_EVENTS) {
		events[i].ns = now_ns();
		snprintf(events[i].cmd, sizeof(events[i].cmd), "%s", cmd);
	}
}

static unsigned long long xorshift(unsigned long long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static long page_size;
static long max_pages;

/*
 * Progress is sampled by a thread of its own, which charges no memory (its
 * buffer is locked in memory and written in advance): it keeps sampling
 * every period while the touching thread is stalled in reclaim or
 * throttled on its way back to user space.
 */
static void *sampler(void *arg)
{
	unsigned long long next = now_ns(), period = sample_ms * 1000000ULL;

	(void)arg;
	while (!atomic_load(&quit) && nr_samples < cap) {
		unsigned long long t = now_ns();

		if (t < next) {
			struct timespec ts = { 0, (long)(next - t) };

			nanosleep(&ts, NULL);
			continue;
		}
		samples[nr_samples][0] = t;
		samples[nr_samples][1] = atomic_load(&pages);
		nr_samples++;
		next += period;
		if (next < t)
			next = t + period;
	}
	return NULL;
}

static void *control(void *arg)
{
	char line[64];

	(void)arg;
	while (fgets(line, sizeof(line), stdin)) {
		long mb;

		line[strcspn(line, "\n")] = 0;
		if (!strcmp(line, "idle")) {
			atomic_store(&idle, 1);
		} else if (!strcmp(line, "run")) {
			atomic_store(&idle, 0);
		} else if (sscanf(line, "mb %ld", &mb) == 1 && mb > 0) {
			long pages = (mb << 20) / page_size;

			if (pages > max_pages) {
				printf("error mb %ld: more than --max-mb\n", mb);
				fflush(stdout);
				continue;
			}
			atomic_store(&want_pages, pages);
		} else if (!strcmp(line, "quit")) {
			break;
		} else {
			printf("error unknown command '%s'\n", line);
			fflush(stdout);
			continue;
		}
		event(line);
		printf("ok %s\n", line);
		fflush(stdout);
	}
	atomic_store(&quit, 1);
	return NULL;
}

static int write_out(const char *path, const char *mode, long mb,
		     unsigned long long (*passes)[2], long nr_passes)
{
	FILE *f = fopen(path, "w");
	int i, n = atomic_load(&nr_events);
	long j;

	if (!f) {
		perror(path);
		return 1;
	}
	fprintf(f, "{\"mode\": \"%s\", \"mb\": %ld, \"page_size\": %ld,\n \"events\": [",
		mode, mb, page_size);
	for (i = 0; i < n && i < MAX_EVENTS; i++)
		fprintf(f, "%s[%llu, \"%s\"]", i ? ", " : "", events[i].ns, events[i].cmd);
	fprintf(f, "],\n \"samples\": [");
	for (j = 0; j < nr_samples; j++)
		fprintf(f, "%s[%llu, %llu]", j ? ",\n  " : "", samples[j][0], samples[j][1]);
	fprintf(f, "],\n \"passes\": [");
	for (j = 0; j < nr_passes; j++)
		fprintf(f, "%s[%llu, %llu]", j ? ",\n  " : "", passes[j][0], passes[j][1]);
	fprintf(f, "]}\n");
	return fclose(f) ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: wsload --mb MB [--max-mb MAX] [--sample-ms MS] [--max-s S] "
		"[--seed N] --out FILE\n"
		"       wsload --probe PERIOD_MS --mb MB [--max-s S] --out FILE\n");
	exit(2);
}

/* A buffer that stays resident: writing to it charges nothing later. */
static void *locked(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
		       MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mlock(p, size))
		perror("wsload: mlock (samples may stall with the task)");
	return p;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mb", required_argument, NULL, 'm' },
		{ "max-mb", required_argument, NULL, 'M' },
		{ "sample-ms", required_argument, NULL, 's' },
		{ "max-s", required_argument, NULL, 'T' },
		{ "probe", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	long mb = 0, max_mb = 0, max_s = 600, probe_ms = 0, nr_passes = 0, populated = 0;
	unsigned long long seed = 88172645463325252ULL, next, n = 0;
	unsigned long long (*passes)[2];
	pthread_t thr, smp;
	const char *out = NULL;
	long cur, i;
	char *p;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': mb = atol(optarg); break;
		case 'M': max_mb = atol(optarg); break;
		case 's': sample_ms = atol(optarg); break;
		case 'T': max_s = atol(optarg); break;
		case 'p': probe_ms = atol(optarg); break;
		case 'S': seed ^= strtoull(optarg, NULL, 0) * 0x9E3779B97F4A7C15ULL; break;
		case 'o': out = optarg; break;
		default: usage();
		}
	}
	if (mb <= 0 || !out || sample_ms <= 0 || probe_ms < 0 || max_s <= 0 || optind != argc)
		usage();
	if (max_mb < mb)
		max_mb = mb;
	page_size = sysconf(_SC_PAGESIZE);
	max_pages = (max_mb << 20) / page_size;
	atomic_store(&want_pages, (mb << 20) / page_size);
	if (!seed)
		seed = 1;

	cap = max_s * 1000 / (probe_ms ? probe_ms : sample_ms) + 16;
	samples = locked(cap * sizeof(*samples));
	passes = locked(cap * sizeof(*passes));
	p = mmap(NULL, max_pages * page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!samples || !passes || p == MAP_FAILED) {
		perror("wsload: memory");
		return 1;
	}
	if (pthread_create(&thr, NULL, control, NULL) ||
	    (!probe_ms && pthread_create(&smp, NULL, sampler, NULL))) {
		perror("pthread_create");
		return 1;
	}

	next = now_ns();
	while (!atomic_load(&quit)) {
		unsigned long long t;

		cur = atomic_load(&want_pages);
		if (populated < cur) {	/* populate in order, counted */
			for (; populated < cur && !atomic_load(&quit); populated++) {
				p[populated * page_size] = 1;
				atomic_store_explicit(&pages, ++n, memory_order_relaxed);
			}
			event("populated");
			printf("ready\n");
			fflush(stdout);
		}
		if (probe_ms) {
			t = now_ns();
			if (t < next) {
				struct timespec ts = { 0, (long)(next - t) };

				nanosleep(&ts, NULL);
				continue;
			}
			t = now_ns();
			for (i = 0; i < populated; i++)
				p[i * page_size]++;
			if (nr_passes < cap) {
				passes[nr_passes][0] = t;
				passes[nr_passes++][1] = now_ns() - t;
			}
			next = t + probe_ms * 1000000ULL;
			continue;
		}
		if (atomic_load(&idle)) {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
			continue;
		}
		/* one page at a time: a throttled task stops after one more */
		for (i = 0; i < 64 && !atomic_load_explicit(&quit, memory_order_relaxed); i++) {
			p[(xorshift(&seed) % populated) * page_size]++;
			atomic_store_explicit(&pages, ++n, memory_order_relaxed);
		}
	}
	if (!probe_ms)
		pthread_join(smp, NULL);
	return write_out(out, probe_ms ? "probe" : "load", mb, passes, nr_passes);
}
