// SPDX-License-Identifier: GPL-2.0
/*
 * reqload [-t THREADS] [-k REQ_KB] [-w WS_MB] [-r RATE] [-s SECONDS] [-g]: a
 * latency-sensitive service for the "who pays memory.high"
 * scenario (S5, issue 26). It keeps a resident working set (-w MB,
 * rewritten a page at a time between requests) and serves requests from
 * THREADS threads: each request maps REQ_KB of anonymous memory,
 * writes every page (the charges, and whatever memory.high makes the task
 * pay for them on its way back to user space) and unmaps it.
 *
 * Once its working set is written it prints "ready" on stderr; with -g it
 * then waits for a line on stdin before serving (the driver starts the
 * service before the batch job and the requests when it chooses).
 *
 * Requests arrive on a fixed schedule, RATE per second per thread, and a
 * request's latency is measured from its scheduled arrival to its end, so
 * a stall delays the requests queued behind it too (no coordinated
 * omission). No request starts after SECONDS: one due before then that
 * had not started is "unserved", and its latency is taken as SECONDS
 * minus its arrival (a lower bound), so that a service stalled for good
 * still ends on time and its tail still counts. Then it prints one line:
 *   {"requests": N, "late": L, "unserved": U, "p50_ms": .., "p99_ms": ..,
 *    "p999_ms": .., "max_ms": .., "lat_ms": [every latency, unserved
 *    ones included, in arrival order per thread]}
 * where "late" counts requests that started after the next one was due.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

static long page;
static size_t req_len, ws_len;
static double rate = 100, seconds = 10;
static char *ws;

struct worker {
	pthread_t tid;
	double *lat;	/* ms */
	size_t n, cap;
	unsigned long long late, unserved;
	size_t ws_off;
};

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void sleep_until(unsigned long long t)
{
	struct timespec ts = { .tv_sec = t / 1000000000ULL, .tv_nsec = t % 1000000000ULL };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void record(struct worker *w, double ms)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 1024;
		w->lat = realloc(w->lat, w->cap * sizeof(*w->lat));
		if (!w->lat) {
			perror("realloc");
			exit(1);
		}
	}
	w->lat[w->n++] = ms;
}

static void *serve(void *arg)
{
	struct worker *w = arg;
	unsigned long long period = (unsigned long long)(1e9 / rate);
	unsigned long long start = now_ns(), end = start + (unsigned long long)(seconds * 1e9);
	unsigned long long due = start, t;
	size_t off;
	char *p;

	while (due < end) {
		if (now_ns() >= end) {	/* too late to start: these go unserved */
			for (; due < end; due += period, w->unserved++)
				record(w, (end - due) / 1e6);
			break;
		}
		sleep_until(due);
		p = mmap(NULL, req_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			exit(1);
		}
		for (off = 0; off < req_len; off += page)
			p[off] = 1;
		munmap(p, req_len);
		if (ws_len) {	/* the service's own state: a page of it per request */
			ws[w->ws_off] += 1;
			w->ws_off = (w->ws_off + 16 * page) % ws_len;
		}
		t = now_ns();
		record(w, (t - due) / 1e6);
		due += period;
		if (t > due)
			w->late++;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(const double *s, size_t n, double q)
{
	size_t i = (size_t)(q * (n - 1) + 0.5);

	return n ? s[i] : 0;
}

int main(int argc, char **argv)
{
	int threads = 1, i, opt, go = 0;
	char line[16];
	size_t req_kb = 1024, ws_mb = 0, total = 0, k, j;
	unsigned long long late = 0, unserved = 0;
	struct worker *w;
	double *all;

	while ((opt = getopt(argc, argv, "t:k:w:r:s:g")) != -1) {
		switch (opt) {
		case 't':
			threads = atoi(optarg);
			break;
		case 'k':
			req_kb = strtoul(optarg, NULL, 10);
			break;
		case 'w':
			ws_mb = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rate = atof(optarg);
			break;
		case 'g':
			go = 1;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc || threads < 1 || !req_kb || rate <= 0 || seconds <= 0)
		goto usage;
	page = sysconf(_SC_PAGESIZE);
	req_len = req_kb << 10;
	ws_len = ws_mb << 20;
	if (ws_len) {
		ws = mmap(NULL, ws_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (ws == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		memset(ws, 1, ws_len);
	}
	fprintf(stderr, "ready\n");
	if (go && !fgets(line, sizeof(line), stdin))
		return 1;	/* no go */
	w = calloc(threads, sizeof(*w));
	for (i = 0; i < threads; i++) {
		w[i].ws_off = (size_t)i * page % (ws_len ? ws_len : 1);
		if (pthread_create(&w[i].tid, NULL, serve, &w[i])) {
			perror("pthread_create");
			return 1;
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		total += w[i].n;
		late += w[i].late;
		unserved += w[i].unserved;
	}
	all = malloc((total ? total : 1) * sizeof(*all));
	for (i = 0, k = 0; i < threads; i++)
		for (j = 0; j < w[i].n; j++)
			all[k++] = w[i].lat[j];
	printf("{\"requests\": %zu, \"late\": %llu, \"unserved\": %llu, \"lat_ms\": [",
	       total, late, unserved);
	for (k = 0; k < total; k++)
		printf("%s%.3f", k ? ", " : "", all[k]);
	qsort(all, total, sizeof(*all), cmp);
	printf("], \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f}\n",
	       pct(all, total, 0.5), pct(all, total, 0.99), pct(all, total, 0.999),
	       total ? all[total - 1] : 0);
	return 0;
usage:
	fprintf(stderr,
		"usage: reqload [-t THREADS] [-k REQ_KB] [-w WS_MB] [-r RATE] [-s SECONDS] [-g]\n");
	return 2;
}
