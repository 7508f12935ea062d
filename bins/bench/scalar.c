/* The bench's baseline: a single-process scalar C program that does what `./client OP`
 * does to nums.csv, without a network. `make bench` builds it with `gcc -O2 -march=native`
 * (for the CPU offload's programs are built for) and times it on the same files as offload
 * (issue 11 section 2).
 *
 *   scalar <min|max|sum|sos> FILE      prints the exact value, exit 0
 *
 * The file is read with read(2) in 1 MiB blocks and parsed one byte at a time: one
 * integer per line, an optional '-', decimal digits, LF or CRLF; values in i64. Anything
 * else is an error naming the line (exit 1), so it validates as much as the client does.
 * Exact for every function: SUM in __int128, SOS in 192 bits (__int128 plus a carry
 * word), as offload's are. The four operations are four copies of one loop (a macro), so
 * no per-number branch on the operation is timed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK (1u << 20)

typedef unsigned __int128 u128;
typedef __int128 i128;

static unsigned char buf[BLOCK];

static void die_line(unsigned long long line, const char *why) {
    fprintf(stderr, "scalar: nums.csv:%llu: %s\n", line, why);
    exit(1);
}

/* Decimal digits of a 192-bit unsigned value (hi:lo) into out (>= 64 bytes): groups of 19
 * digits by repeated long division of three 64-bit limbs by 1e19. */
static void fmt_u192(uint64_t hi, u128 lo, char *out) {
    uint64_t limb[3] = {hi, (uint64_t)(lo >> 64), (uint64_t)lo};
    const uint64_t base = 10000000000000000000ull;
    unsigned long long group[4];
    int n = 0;
    do {
        u128 rem = 0;
        for (int i = 0; i < 3; i++) {
            u128 cur = (rem << 64) | limb[i];
            limb[i] = (uint64_t)(cur / base);
            rem = cur % base;
        }
        group[n++] = (unsigned long long)rem;
    } while (limb[0] | limb[1] | limb[2]);
    int k = sprintf(out, "%llu", group[n - 1]);
    for (int i = n - 2; i >= 0; i--)
        k += sprintf(out + k, "%019llu", group[i]);
}

static void fmt_i128(i128 v, char *out) {
    int neg = v < 0;
    u128 m = neg ? (u128)0 - (u128)v : (u128)v;
    char tmp[48];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    int k = 0;
    if (neg)
        out[k++] = '-';
    while (n)
        out[k++] = tmp[--n];
    out[k] = 0;
}

/* Parser state carried across blocks. */
struct state {
    uint64_t mag;    /* magnitude of the number so far */
    int neg;         /* saw '-' */
    int digits;      /* digits so far on this line */
    int cr;          /* saw '\r' (must be followed by '\n') */
    int started;     /* any byte on this line */
    unsigned long long line;
    unsigned long long count;
};

/* The value of a finished line, or dies with the reason. */
static inline int64_t finish(struct state *s) {
    if (s->digits == 0)
        die_line(s->line, s->started ? "is not an integer" : "is empty");
    if (s->neg) {
        if (s->mag > (uint64_t)1 << 63)
            die_line(s->line, "is below i64::MIN");
        return (int64_t)(0 - s->mag);
    }
    if (s->mag > (uint64_t)INT64_MAX)
        die_line(s->line, "is above i64::MAX");
    return (int64_t)s->mag;
}

/* One loop per operation; FOLD(v) folds the finished value v into the accumulator. */
#define PARSE_LOOP(NAME, DECL, FOLD)                                                      \
    static void NAME(int fd, struct state *s, DECL) {                                     \
        for (;;) {                                                                        \
            ssize_t got = read(fd, buf, BLOCK);                                           \
            if (got < 0) {                                                                \
                if (errno == EINTR)                                                       \
                    continue;                                                             \
                perror("scalar: read");                                                   \
                exit(2);                                                                  \
            }                                                                             \
            if (got == 0)                                                                 \
                break;                                                                    \
            for (ssize_t i = 0; i < got; i++) {                                           \
                unsigned c = buf[i];                                                      \
                unsigned d = c - '0';                                                     \
                if (d < 10) {                                                             \
                    if (s->cr)                                                            \
                        die_line(s->line, "has a stray carriage return");                \
                    if (__builtin_expect(s->digits >= 19, 0) &&                           \
                        s->mag > (UINT64_MAX - d) / 10)                                   \
                        die_line(s->line, "is out of range");                            \
                    s->mag = s->mag * 10 + d;                                             \
                    s->digits++;                                                          \
                    s->started = 1;                                                       \
                } else if (c == '\n') {                                                   \
                    int64_t v = finish(s);                                                \
                    FOLD(v);                                                              \
                    s->count++;                                                           \
                    s->line++;                                                            \
                    s->mag = 0;                                                           \
                    s->neg = s->digits = s->cr = s->started = 0;                          \
                } else if (c == '-' && !s->started) {                                     \
                    s->neg = 1;                                                           \
                    s->started = 1;                                                       \
                } else if (c == '\r' && s->digits && !s->cr) {                            \
                    s->cr = 1;                                                            \
                } else {                                                                  \
                    die_line(s->line, "is not an integer");                              \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
        if (s->started) { /* last line without a newline */                              \
            int64_t v = finish(s);                                                        \
            FOLD(v);                                                                      \
            s->count++;                                                                   \
        }                                                                                 \
    }

#define FOLD_MIN(v) if ((v) < *acc) *acc = (v)
#define FOLD_MAX(v) if ((v) > *acc) *acc = (v)
#define FOLD_SUM(v) *acc += (v)
#define FOLD_SOS(v)                                                                       \
    do {                                                                                  \
        u128 sq = (u128)((i128)(v) * (i128)(v));                                          \
        u128 before = *lo;                                                                \
        *lo += sq;                                                                        \
        *hi += *lo < before;                                                              \
    } while (0)

PARSE_LOOP(run_min, int64_t *acc, FOLD_MIN)
PARSE_LOOP(run_max, int64_t *acc, FOLD_MAX)
PARSE_LOOP(run_sum, i128 *acc, FOLD_SUM)

/* A macro argument cannot hold a comma; this name expands to the two parameters. */
#define SOS_PARAMS u128 *lo, uint64_t *hi
PARSE_LOOP(run_sos, SOS_PARAMS, FOLD_SOS)

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: scalar <min|max|sum|sos> FILE\n");
        return 2;
    }
    const char *op = argv[1];
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "scalar: %s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    struct state s = {0};
    s.line = 1;
    char out[96];
    if (strcmp(op, "min") == 0 || strcmp(op, "max") == 0) {
        int is_min = op[1] == 'i';
        int64_t acc = is_min ? INT64_MAX : INT64_MIN;
        if (is_min)
            run_min(fd, &s, &acc);
        else
            run_max(fd, &s, &acc);
        if (s.count == 0) {
            fprintf(stderr, "scalar: no numbers\n");
            return 1;
        }
        snprintf(out, sizeof out, "%lld", (long long)acc);
    } else if (strcmp(op, "sum") == 0) {
        i128 acc = 0;
        run_sum(fd, &s, &acc);
        fmt_i128(acc, out);
    } else if (strcmp(op, "sos") == 0) {
        u128 lo = 0;
        uint64_t hi = 0;
        run_sos(fd, &s, &lo, &hi);
        fmt_u192(hi, lo, out);
    } else {
        fprintf(stderr, "scalar: unknown operation %s (min, max, sum or sos)\n", op);
        return 2;
    }
    printf("%s\n", out);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("scalar: stdout");
        return 2;
    }
    return 0;
}
