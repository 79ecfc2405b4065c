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
		     unsigned long long (*samples)[2], long nr_samples,
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
	fprintf(stderr, "usage: wsload --mb MB [--max-mb MAX] [--sample-ms MS] [--seed N] "
		"--out FILE\n       wsload --probe PERIOD_MS --mb MB [--seed N] --out FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mb", required_argument, NULL, 'm' },
		{ "max-mb", required_argument, NULL, 'M' },
		{ "sample-ms", required_argument, NULL, 's' },
		{ "probe", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	long mb = 0, max_mb = 0, sample_ms = 10, probe_ms = 0, cap, nr_samples = 0;
	long nr_passes = 0, populated = 0, cur, i;
	unsigned long long seed = 88172645463325252ULL, next, period, pages = 0;
	unsigned long long (*samples)[2], (*passes)[2];
	const char *out = NULL;
	pthread_t thr;
	char *p;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': mb = atol(optarg); break;
		case 'M': max_mb = atol(optarg); break;
		case 's': sample_ms = atol(optarg); break;
		case 'p': probe_ms = atol(optarg); break;
		case 'S': seed ^= strtoull(optarg, NULL, 0) * 0x9E3779B97F4A7C15ULL; break;
		case 'o': out = optarg; break;
		default: usage();
		}
	}
	if (mb <= 0 || !out || sample_ms <= 0 || probe_ms < 0 || optind != argc)
		usage();
	if (max_mb < mb)
		max_mb = mb;
	page_size = sysconf(_SC_PAGESIZE);
	max_pages = (max_mb << 20) / page_size;
	atomic_store(&want_pages, (mb << 20) / page_size);
	if (!seed)
		seed = 1;

	cap = 4 * 1024 * 1024;	/* 11 h of 10 ms samples */
	samples = calloc(cap, sizeof(*samples));
	passes = calloc(cap, sizeof(*passes));
	p = mmap(NULL, max_pages * page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!samples || !passes || p == MAP_FAILED) {
		perror("wsload: memory");
		return 1;
	}
	if (pthread_create(&thr, NULL, control, NULL)) {
		perror("pthread_create");
		return 1;
	}

	period = (probe_ms ? probe_ms : sample_ms) * 1000000ULL;
	next = now_ns();
	while (!atomic_load(&quit)) {
		unsigned long long t;

		cur = atomic_load(&want_pages);
		if (populated < cur) {	/* populate in order, counted */
			for (; populated < cur; populated++) {
				p[populated * page_size] = 1;
				pages++;
				if (!(populated & 63) && now_ns() >= next && nr_samples < cap) {
					samples[nr_samples][0] = now_ns();
					samples[nr_samples++][1] = pages;
					next += period;
				}
			}
			event("populated");
			printf("ready\n");
			fflush(stdout);
		}
		t = now_ns();
		if (probe_ms) {
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
			next = t + period;
			continue;
		}
		if (t >= next && nr_samples < cap) {
			samples[nr_samples][0] = t;
			samples[nr_samples++][1] = pages;
			next += period;
			if (next < t)	/* fell behind (a long stall): no burst */
				next = t + period;
		}
		if (atomic_load(&idle)) {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
			continue;
		}
		for (i = 0; i < 64; i++)
			p[(xorshift(&seed) % populated) * page_size]++;
		pages += 64;
	}
	if (nr_samples < cap) {
		samples[nr_samples][0] = now_ns();
		samples[nr_samples++][1] = pages;
	}
	return write_out(out, probe_ms ? "probe" : "load", mb, samples, nr_samples,
			 passes, nr_passes);
}
