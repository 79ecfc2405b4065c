// SPDX-License-Identifier: GPL-2.0
/*
 * membench SIZE SECS: the charge-path microbenchmark of `harness bench`.
 * For SECS seconds, map SIZE of anonymous memory (MB, or KB with a "k"
 * suffix), write one byte to each page (a page fault and a memcg charge
 * each) and unmap it (the uncharge). "256k" is 64 pages: one memcg charge
 * batch per mmap(), and as many system calls as charge batches.
 * Prints {"pages": P, "ns": T, "ns_per_page": T/P} for the whole run. The
 * caller puts it in the cgroup to measure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned long long t0, end, pages = 0;
	long page = sysconf(_SC_PAGESIZE);
	size_t len, off;
	char *p;

	if (argc != 3 || atol(argv[1]) <= 0 || atof(argv[2]) <= 0) {
		fprintf(stderr, "usage: membench SIZE SECS (SIZE in MB, or KB with a k suffix)\n");
		return 2;
	}
	len = (size_t)atol(argv[1]) << (argv[1][strlen(argv[1]) - 1] == 'k' ? 10 : 20);
	t0 = now_ns();
	end = t0 + (unsigned long long)(atof(argv[2]) * 1e9);
	do {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		for (off = 0; off < len; off += page)
			p[off] = 1;
		munmap(p, len);
		pages += len / page;
	} while (now_ns() < end);
	end = now_ns();
	printf("{\"pages\": %llu, \"ns\": %llu, \"ns_per_page\": %.2f}\n", pages, end - t0,
	       (double)(end - t0) / pages);
	return 0;
}
