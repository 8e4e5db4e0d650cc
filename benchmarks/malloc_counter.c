/* Counts heap allocations for `client-benchmarks` (allocations per record).
 *
 *   cc -O2 -shared -fPIC -o /tmp/malloc_counter.so benchmarks/malloc_counter.c
 *   LD_PRELOAD=/tmp/malloc_counter.so .build/release/client-benchmarks ...
 *
 * Wraps glibc's malloc family and counts calls process-wide; the benchmark finds
 * `tributary_malloc_count` with dlsym and prints allocations per record for each phase.
 * With the in-process broker the count includes the broker's allocations; run against
 * `tributary serve` (--bootstrap-server) to count the client alone.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic unsigned long allocations;

static inline void count(void) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); }

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { count(); return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    count();
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

unsigned long tributary_malloc_count(void) { return atomic_load_explicit(&allocations, memory_order_relaxed); }
