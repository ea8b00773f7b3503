// Distance kernels for FaceMatch. See include/simd_kernels.h for the conventions.
//
// One score = dot(query, row), computed per instruction set in a fixed order:
//   scalar / AVX2 / NEON: 8 lanes, lane l accumulates fma(x[8c+l], q[8c+l]) over
//     chunks c in order, then ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
//     These three are bit-identical to each other (tests rely on it).
//   AVX-512: 16 lanes the same way, folded to 8 (lane l + lane l+8), then the tree.
// Every path of one instruction set (single query, batch, tail, re-rank) uses that
// order, so the int8/fp16 re-rank reproduces the float scan exactly.
#include "simd_kernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define FM_X86 1
#define FM_AVX2 __attribute__((target("avx2,fma,f16c")))
#define FM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#define FM_ARM 1
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define FM_INLINE static inline __attribute__((always_inline))

// MARK: - Instruction set selection

static _Atomic int fm_isa_active = -2; // -2: not yet detected

int fm_detected_isa(void) {
#if defined(FM_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return FM_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return FM_ISA_AVX2;
    return FM_ISA_SCALAR;
#elif defined(FM_ARM)
    return FM_ISA_NEON;
#else
    return FM_ISA_SCALAR;
#endif
}

int fm_active_isa(void) {
    int isa = atomic_load_explicit(&fm_isa_active, memory_order_relaxed);
    if (isa == -2) {
        isa = fm_detected_isa();
        atomic_store_explicit(&fm_isa_active, isa, memory_order_relaxed);
    }
    return isa;
}

int fm_set_isa(int isa) {
    int best = fm_detected_isa();
    if (isa == FM_ISA_AUTO) isa = best;
    int ok = isa == FM_ISA_SCALAR || isa == best;
#if defined(FM_X86)
    if (isa == FM_ISA_AVX2 && best == FM_ISA_AVX512) ok = 1;
#endif
    if (!ok) return -1;
    atomic_store_explicit(&fm_isa_active, isa, memory_order_relaxed);
    return 0;
}

const char *fm_isa_name(int isa) {
    switch (isa) {
    case FM_ISA_SCALAR: return "scalar";
    case FM_ISA_AVX2: return "avx2";
    case FM_ISA_AVX512: return "avx512";
    case FM_ISA_NEON: return "neon";
    default: return "unknown";
    }
}

// MARK: - Top-m distinct students

typedef struct {
    fm_hit *h;  // sorted: score descending, row ascending
    size_t len, m;
    float thr;  // a row must score strictly above this to enter; -inf until full
    const float *bias; // added to each row's dot product (NULL: none)
} topm;

// A row's score: its dot product with the query plus its bias (one float add, the same on every path).
FM_INLINE float fm_bias(const float *bias, size_t row) { return bias ? bias[row] : 0.0f; }

static void topm_init(topm *t, fm_hit *h, size_t m, const float *bias) {
    t->bias = bias;
    t->h = h;
    t->len = 0;
    t->m = m;
    t->thr = m == 0 ? INFINITY : -INFINITY;
}

// Rows are offered in ascending row order, so a later row never wins a tie.
static void topm_offer(topm *t, float s, uint32_t row, uint32_t student) {
    if (!(s > t->thr)) return;
    fm_hit *h = t->h;
    size_t len = t->len, j;
    for (j = 0; j < len; j++)
        if (h[j].student == student) break;
    if (j < len) {
        if (!(s > h[j].score)) return; // the student's earlier row is at least as good
        memmove(&h[j], &h[j + 1], (len - j - 1) * sizeof *h);
        len--;
    } else if (len == t->m) {
        len--; // evict the worst student
    }
    size_t p = 0;
    while (p < len && h[p].score >= s) p++;
    memmove(&h[p + 1], &h[p], (len - p) * sizeof *h);
    h[p].score = s;
    h[p].row = row;
    h[p].student = student;
    t->len = ++len;
    t->thr = len == t->m ? h[len - 1].score : -INFINITY;
}

// Offers the lanes of v (rows i .. i+valid-1) that beat the threshold.
FM_INLINE void topm_offer_lanes(topm *t, const float *v, unsigned mask, size_t i, const uint32_t *rs) {
    while (mask) {
        unsigned l = (unsigned)__builtin_ctz(mask);
        mask &= mask - 1;
        if (v[l] > t->thr) topm_offer(t, v[l], (uint32_t)(i + l), rs[i + l]);
    }
}

// MARK: - Candidate collection for the int8 / fp16 scans

typedef struct {
    topm t;        // approximate top-m distinct students
    float window;
    uint32_t *cand;
    float *cs;     // approximate score of each candidate
    size_t nc, cap;
    int overflow;
} collector;

static void collector_compact(collector *c) {
    float lim = c->t.thr - c->window;
    size_t w = 0;
    for (size_t r = 0; r < c->nc; r++) {
        if (c->cs[r] >= lim) {
            c->cand[w] = c->cand[r];
            c->cs[w] = c->cs[r];
            w++;
        }
    }
    c->nc = w;
}

static void collector_take(collector *c, float s, uint32_t row, uint32_t student) {
    if (s > c->t.thr) topm_offer(&c->t, s, row, student);
    if (!(s >= c->t.thr - c->window)) return;
    if (c->nc == c->cap) {
        collector_compact(c);
        if (c->nc == c->cap) {
            c->overflow = 1;
            return;
        }
    }
    c->cand[c->nc] = row;
    c->cs[c->nc] = s;
    c->nc++;
}

FM_INLINE void collector_lanes(collector *c, const float *v, size_t i, size_t valid, const uint32_t *rs) {
    float lim = c->t.thr - c->window;
    for (size_t l = 0; l < valid; l++)
        if (v[l] >= lim) collector_take(c, v[l], (uint32_t)(i + l), rs[i + l]);
}

static long collector_finish(collector *c) {
    if (c->overflow) return -1;
    collector_compact(c);
    return (long)c->nc;
}

// MARK: - Scalar (portable; bit-identical to AVX2 and NEON)

static float dot_scalar(const float *x, const float *q, size_t stride) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t c = 0; c < stride; c += 8)
        for (int l = 0; l < 8; l++) a[l] = fmaf(x[c + l], q[c + l], a[l]);
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static void search_scalar(const float *base, const float *bias, size_t n, size_t stride, const uint32_t *rs,
                          const float *queries, size_t nq, size_t m, fm_hit *hits, size_t *counts) {
    for (size_t j = 0; j < nq; j++) {
        topm t;
        topm_init(&t, hits + j * m, m, bias);
        const float *q = queries + j * stride;
        for (size_t i = 0; i < n; i++) {
            float s = dot_scalar(base + i * stride, q, stride) + fm_bias(bias, i);
            if (s > t.thr) topm_offer(&t, s, (uint32_t)i, rs[i]);
        }
        counts[j] = t.len;
    }
}

static void rerank_scalar(const float *base, const float *bias, size_t stride, const uint32_t *rs, const uint32_t *rows,
                          size_t nrows, const float *q, size_t m, fm_hit *hits, size_t *count) {
    topm t;
    topm_init(&t, hits, m, bias);
    for (size_t i = 0; i < nrows; i++) {
        float s = dot_scalar(base + (size_t)rows[i] * stride, q, stride) + fm_bias(bias, rows[i]);
        if (s > t.thr) topm_offer(&t, s, rows[i], rs[rows[i]]);
    }
    *count = t.len;
}

static int32_t dot_i8_scalar(const int8_t *x, const int8_t *q, size_t stride) {
    int32_t s = 0;
    for (size_t c = 0; c < stride; c++) s += (int32_t)x[c] * (int32_t)q[c];
    return s;
}

static long scan_i8_scalar(const int8_t *base, const float *scales, size_t n, size_t stride,
                           const uint32_t *rs, const int8_t *q, float qscale, collector *c) {
    for (size_t i = 0; i < n && !c->overflow; i++) {
        float v = ((float)dot_i8_scalar(base + i * stride, q, stride) * scales[i]) * qscale + fm_bias(c->t.bias, i);
        collector_lanes(c, &v, i, 1, rs);
    }
    return collector_finish(c);
}

static float f16_to_f32_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { // subnormal half -> normal float
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ffu;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint16_t f32_to_f16_scalar(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); // rounds to infinity
    if (ax < 0x38800000u) { // result is subnormal or zero
        if (ax < 0x33000000u) return (uint16_t)sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; // 14 .. 24
        uint32_t v = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (v & 1u))) v++;
        return (uint16_t)(sign | v);
    }
    uint32_t v = ((ax - 0x38000000u) >> 13); // rebias exponent 127 -> 15
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) v++;
    return (uint16_t)(sign | v);
}

void fm_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_f16_scalar(src[i]);
}

void fm_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32_scalar(src[i]);
}

static long scan_f16_scalar(const uint16_t *base, size_t n, size_t stride, const uint32_t *rs,
                            const float *q, collector *c) {
    float *row = malloc(stride * sizeof(float));
    if (!row) return -1;
    for (size_t i = 0; i < n && !c->overflow; i++) {
        fm_f16_to_f32(base + i * stride, row, stride);
        float v = dot_scalar(row, q, stride) + fm_bias(c->t.bias, i);
        collector_lanes(c, &v, i, 1, rs);
    }
    free(row);
    return collector_finish(c);
}

// MARK: - AVX2

#if defined(FM_X86)

// Lane r of the result = the canonical 8-lane tree of a_r.
FM_AVX2 FM_INLINE __m256 reduce8_avx2(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5,
                                      __m256 a6, __m256 a7) {
    __m256 t0 = _mm256_hadd_ps(a0, a1), t1 = _mm256_hadd_ps(a2, a3);
    __m256 t2 = _mm256_hadd_ps(a4, a5), t3 = _mm256_hadd_ps(a6, a7);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Eight rows (pointers r[0..7]) against one query.
FM_AVX2 FM_INLINE __m256 rows8_avx2(const float *r0, const float *r1, const float *r2, const float *r3,
                                    const float *r4, const float *r5, const float *r6, const float *r7,
                                    const float *q, size_t chunks) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t c = 0; c < chunks; c++) {
        size_t o = 8 * c;
        __m256 qv = _mm256_loadu_ps(q + o);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + o), qv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + o), qv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + o), qv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + o), qv, a3);
        a4 = _mm256_fmadd_ps(_mm256_loadu_ps(r4 + o), qv, a4);
        a5 = _mm256_fmadd_ps(_mm256_loadu_ps(r5 + o), qv, a5);
        a6 = _mm256_fmadd_ps(_mm256_loadu_ps(r6 + o), qv, a6);
        a7 = _mm256_fmadd_ps(_mm256_loadu_ps(r7 + o), qv, a7);
    }
    return reduce8_avx2(a0, a1, a2, a3, a4, a5, a6, a7);
}

// The same arithmetic as block8_avx2 (each row's chain over the chunks in order, then
// the same tree), written row after row so that the loads leave in address order: the
// DRAM-resident scan streams faster this way.
FM_AVX2 FM_INLINE __m256 block8_seq_avx2(const float *r, size_t stride, const float *q, size_t chunks) {
    __m256 a[8];
    for (size_t j = 0; j < 8; j++) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t c = 0; c < chunks; c++)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(r + j * stride + 8 * c), _mm256_loadu_ps(q + 8 * c), acc);
        a[j] = acc;
    }
    return reduce8_avx2(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
}

FM_AVX2 FM_INLINE __m256 block8_avx2(const float *r, size_t stride, const float *q, size_t chunks) {
    return rows8_avx2(r, r + stride, r + 2 * stride, r + 3 * stride, r + 4 * stride, r + 5 * stride,
                      r + 6 * stride, r + 7 * stride, q, chunks);
}

#ifndef FM_PF_BLOCKS
#define FM_PF_BLOCKS 2
#endif
#ifndef FM_SEQ
#define FM_SEQ 1
#endif

// Software prefetch of the block FM_PF_BLOCKS ahead, spread over the current block's work.
// The hardware prefetcher alone leaves L3- and DRAM-resident galleries short of the floor.
#ifndef FM_PF_STEP
#define FM_PF_STEP 64
#endif
FM_AVX2 FM_INLINE void prefetch_block(const void *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += FM_PF_STEP) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

// The float32 scan reads every row once: a non-temporal prefetch brings it close without
// evicting what stays hot (query, bookkeeping); measured 1-2 % closer to the floor here (AVX2).
FM_AVX2 FM_INLINE void prefetch_block_nta(const void *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += FM_PF_STEP) _mm_prefetch((const char *)p + o, _MM_HINT_NTA);
}

// Rows r, r+stride against queries q, q+qstride, ..., q+3*qstride. Lanes: [r0q0 r1q0 r0q1 r1q1 ...].
FM_AVX2 FM_INLINE __m256 tile2x4_avx2(const float *r, size_t stride, const float *q, size_t chunks) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    const float *r1 = r + stride, *q1 = q + stride, *q2 = q + 2 * stride, *q3 = q + 3 * stride;
    for (size_t c = 0; c < chunks; c++) {
        size_t o = 8 * c;
        __m256 x0 = _mm256_loadu_ps(r + o), x1 = _mm256_loadu_ps(r1 + o), qv;
        qv = _mm256_loadu_ps(q + o);
        a0 = _mm256_fmadd_ps(x0, qv, a0);
        a1 = _mm256_fmadd_ps(x1, qv, a1);
        qv = _mm256_loadu_ps(q1 + o);
        a2 = _mm256_fmadd_ps(x0, qv, a2);
        a3 = _mm256_fmadd_ps(x1, qv, a3);
        qv = _mm256_loadu_ps(q2 + o);
        a4 = _mm256_fmadd_ps(x0, qv, a4);
        a5 = _mm256_fmadd_ps(x1, qv, a5);
        qv = _mm256_loadu_ps(q3 + o);
        a6 = _mm256_fmadd_ps(x0, qv, a6);
        a7 = _mm256_fmadd_ps(x1, qv, a7);
    }
    return reduce8_avx2(a0, a1, a2, a3, a4, a5, a6, a7);
}

FM_AVX2 FM_INLINE void offer8_avx2(topm *t, __m256 s, size_t i, size_t valid, const uint32_t *rs) {
    if (t->bias) {
        if (valid >= 8) {
            s = _mm256_add_ps(s, _mm256_loadu_ps(t->bias + i));
        } else {
            float b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (size_t l = 0; l < valid; l++) b[l] = t->bias[i + l];
            s = _mm256_add_ps(s, _mm256_loadu_ps(b));
        }
    }
    unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(s, _mm256_set1_ps(t->thr), _CMP_GT_OQ));
    if (valid < 8) mask &= (1u << valid) - 1;
    if (!mask) return;
    float v[8];
    _mm256_storeu_ps(v, s);
    topm_offer_lanes(t, v, mask, i, rs);
}

// The last n % 8 rows: repeat the last row in the missing lanes, then mask them.
FM_AVX2 FM_INLINE __m256 tail8_avx2(const float *base, size_t i, size_t n, size_t stride, const float *q,
                                    size_t chunks) {
    const float *p[8];
    for (size_t l = 0; l < 8; l++) p[l] = base + (i + l < n ? i + l : n - 1) * stride;
    return rows8_avx2(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], q, chunks);
}

FM_AVX2 FM_INLINE void search_avx2_body(const float *base, size_t n, size_t stride, const uint32_t *rs,
                                        const float *queries, size_t nq, topm *t, size_t chunks) {
    size_t i = 0, nq4 = nq & ~(size_t)3;
    // Prefetching only pays once the gallery is past L2 (it costs load slots when it is not).
    const int pf = n * stride * sizeof(float) > ((size_t)4 << 20);
    for (; i + 8 <= n; i += 8) {
        const float *r = base + i * stride;
        if (pf && i + (FM_PF_BLOCKS + 1) * 8 <= n) prefetch_block_nta(r + FM_PF_BLOCKS * 8 * stride, 8 * stride * sizeof(float));
        for (size_t g = 0; g < nq4; g += 4) {
            float sc[8][8]; // [pair][lane]
            const float *q = queries + g * stride;
            for (size_t p = 0; p < 4; p++) _mm256_storeu_ps(sc[p], tile2x4_avx2(r + 2 * p * stride, stride, q, chunks));
            for (size_t k = 0; k < 4; k++) {
                float v[8];
                for (size_t p = 0; p < 4; p++) {
                    v[2 * p] = sc[p][2 * k];
                    v[2 * p + 1] = sc[p][2 * k + 1];
                }
                offer8_avx2(&t[g + k], _mm256_loadu_ps(v), i, 8, rs);
            }
        }
        for (size_t j = nq4; j < nq; j++) {
            const float *q = queries + j * stride;
            offer8_avx2(&t[j], FM_SEQ && pf ? block8_seq_avx2(r, stride, q, chunks) : block8_avx2(r, stride, q, chunks), i, 8, rs);
        }
    }
    if (i < n)
        for (size_t j = 0; j < nq; j++)
            offer8_avx2(&t[j], tail8_avx2(base, i, n, stride, queries + j * stride, chunks), i, n - i, rs);
}

FM_AVX2 static void search_avx2(const float *base, size_t n, size_t stride, const uint32_t *rs, const float *queries,
                                size_t nq, topm *t) {
    if (stride == 128) search_avx2_body(base, n, 128, rs, queries, nq, t, 16); // d = 128, the common case
    else search_avx2_body(base, n, stride, rs, queries, nq, t, stride / 8);
}

FM_AVX2 static void rerank_avx2(const float *base, size_t stride, const uint32_t *rs, const uint32_t *rows,
                                size_t nrows, const float *q, topm *t) {
    size_t chunks = stride / 8;
    for (size_t i = 0; i < nrows; i += 8) {
        const float *p[8];
        uint32_t rr[8];
        size_t valid = nrows - i < 8 ? nrows - i : 8;
        for (size_t l = 0; l < 8; l++) {
            rr[l] = rows[l < valid ? i + l : nrows - 1];
            p[l] = base + (size_t)rr[l] * stride;
        }
        __m256 s = rows8_avx2(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], q, chunks);
        float v[8];
        _mm256_storeu_ps(v, s);
        for (size_t l = 0; l < valid; l++) {
            float sc = v[l] + fm_bias(t->bias, rr[l]);
            if (sc > t->thr) topm_offer(t, sc, rr[l], rs[rr[l]]);
        }
    }
}

FM_AVX2 FM_INLINE __m256i reduce8_epi32(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5,
                                        __m256i a6, __m256i a7) {
    __m256i t0 = _mm256_hadd_epi32(a0, a1), t1 = _mm256_hadd_epi32(a2, a3);
    __m256i t2 = _mm256_hadd_epi32(a4, a5), t3 = _mm256_hadd_epi32(a6, a7);
    __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

// sum(q * x) for 32 int8 pairs, as 8 int32 partial sums: |q| * (x * sign q), no saturation for |v| <= 127.
FM_AVX2 FM_INLINE __m256i dot32_i8(__m256i x, __m256i qabs, __m256i q, __m256i ones) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(qabs, _mm256_sign_epi8(x, q)), ones);
}

FM_AVX2 FM_INLINE void scan_i8_avx2_body(const int8_t *base, const float *scales, size_t n, size_t stride,
                                         const uint32_t *rs, const int8_t *query, float qscale, collector *c,
                                         size_t chunks) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256 qs = _mm256_set1_ps(qscale);
    size_t i = 0;
    const int pf = n * stride > ((size_t)4 << 20);
    for (; i + 8 <= n && !c->overflow; i += 8) {
        const int8_t *r = base + i * stride;
        if (pf && i + 40 <= n) prefetch_block(r + 32 * stride, 8 * stride);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (size_t k = 0; k < chunks; k++) {
            size_t o = 32 * k;
            __m256i q = _mm256_loadu_si256((const __m256i *)(query + o));
            __m256i qa = _mm256_abs_epi8(q);
            a0 = _mm256_add_epi32(a0, dot32_i8(_mm256_loadu_si256((const __m256i *)(r + o)), qa, q, ones));
            a1 = _mm256_add_epi32(a1, dot32_i8(_mm256_loadu_si256((const __m256i *)(r + stride + o)), qa, q, ones));
            a2 = _mm256_add_epi32(a2, dot32_i8(_mm256_loadu_si256((const __m256i *)(r + 2 * stride + o)), qa, q, ones));
            a3 = _mm256_add_epi32(a3, dot32_i8(_mm256_loadu_si256((const __m256i *)(r + 3 * stride + o)), qa, q, ones));
            a4 = _mm256_add_epi32(a4, dot32_i8(_mm256_loadu_si256((const __m256i *)(r + 4 * stride + o)), qa, q, ones));
            a5 = _mm256_add_epi32(a5, dot32_i8(_mm256_loadu_si256((const __m256i *)(r + 5 * stride + o)), qa, q, ones));
            a6 = _mm256_add_epi32(a6, dot32_i8(_mm256_loadu_si256((const __m256i *)(r + 6 * stride + o)), qa, q, ones));
            a7 = _mm256_add_epi32(a7, dot32_i8(_mm256_loadu_si256((const __m256i *)(r + 7 * stride + o)), qa, q, ones));
        }
        __m256 s = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(reduce8_epi32(a0, a1, a2, a3, a4, a5, a6, a7)),
                                               _mm256_loadu_ps(scales + i)),
                                 qs);
        if (c->t.bias) s = _mm256_add_ps(s, _mm256_loadu_ps(c->t.bias + i));
        __m256 lim = _mm256_set1_ps(c->t.thr - c->window);
        if (_mm256_movemask_ps(_mm256_cmp_ps(s, lim, _CMP_GE_OQ))) {
            float v[8];
            _mm256_storeu_ps(v, s);
            collector_lanes(c, v, i, 8, rs);
        }
    }
    for (; i < n && !c->overflow; i++) {
        float v = ((float)dot_i8_scalar(base + i * stride, query, stride) * scales[i]) * qscale + fm_bias(c->t.bias, i);
        collector_lanes(c, &v, i, 1, rs);
    }
}

FM_AVX2 static long scan_i8_avx2(const int8_t *base, const float *scales, size_t n, size_t stride,
                                 const uint32_t *rs, const int8_t *query, float qscale, collector *c) {
    if (stride == 128) scan_i8_avx2_body(base, scales, n, 128, rs, query, qscale, c, 4);
    else scan_i8_avx2_body(base, scales, n, stride, rs, query, qscale, c, stride / 32);
    return collector_finish(c);
}

FM_AVX2 FM_INLINE __m256 ld_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

FM_AVX2 FM_INLINE void scan_f16_avx2_body(const uint16_t *base, size_t n, size_t stride, const uint32_t *rs,
                                          const float *q, collector *c, size_t chunks) {
    size_t i = 0;
    const int pf = n * stride * 2 > ((size_t)4 << 20);
    for (; i + 8 <= n && !c->overflow; i += 8) {
        const uint16_t *r = base + i * stride;
        if (pf && i + 32 <= n) prefetch_block(r + 24 * stride, 8 * stride * 2);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (size_t k = 0; k < chunks; k++) {
            size_t o = 8 * k;
            __m256 qv = _mm256_loadu_ps(q + o);
            a0 = _mm256_fmadd_ps(ld_f16(r + o), qv, a0);
            a1 = _mm256_fmadd_ps(ld_f16(r + stride + o), qv, a1);
            a2 = _mm256_fmadd_ps(ld_f16(r + 2 * stride + o), qv, a2);
            a3 = _mm256_fmadd_ps(ld_f16(r + 3 * stride + o), qv, a3);
            a4 = _mm256_fmadd_ps(ld_f16(r + 4 * stride + o), qv, a4);
            a5 = _mm256_fmadd_ps(ld_f16(r + 5 * stride + o), qv, a5);
            a6 = _mm256_fmadd_ps(ld_f16(r + 6 * stride + o), qv, a6);
            a7 = _mm256_fmadd_ps(ld_f16(r + 7 * stride + o), qv, a7);
        }
        __m256 s = reduce8_avx2(a0, a1, a2, a3, a4, a5, a6, a7);
        if (c->t.bias) s = _mm256_add_ps(s, _mm256_loadu_ps(c->t.bias + i));
        __m256 lim = _mm256_set1_ps(c->t.thr - c->window);
        if (_mm256_movemask_ps(_mm256_cmp_ps(s, lim, _CMP_GE_OQ))) {
            float v[8];
            _mm256_storeu_ps(v, s);
            collector_lanes(c, v, i, 8, rs);
        }
    }
    if (i < n && !c->overflow) {
        float *row = malloc(stride * sizeof(float));
        if (!row) {
            c->overflow = 1;
            return;
        }
        for (; i < n && !c->overflow; i++) {
            fm_f16_to_f32(base + i * stride, row, stride);
            float v = dot_scalar(row, q, stride) + fm_bias(c->t.bias, i);
            collector_lanes(c, &v, i, 1, rs);
        }
        free(row);
    }
}

FM_AVX2 static long scan_f16_avx2(const uint16_t *base, size_t n, size_t stride, const uint32_t *rs,
                                  const float *q, collector *c) {
    if (stride == 128) scan_f16_avx2_body(base, n, 128, rs, q, c, 16);
    else scan_f16_avx2_body(base, n, stride, rs, q, c, stride / 8);
    return collector_finish(c);
}

FM_AVX2 static float stream_avx2(const void *p, size_t bytes) {
    const __m256 *v = (const __m256 *)p;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 8 <= bytes / 32; i += 8) {
        s0 = _mm256_add_ps(s0, _mm256_add_ps(_mm256_load_ps((const float *)(v + i)), _mm256_load_ps((const float *)(v + i + 1))));
        s1 = _mm256_add_ps(s1, _mm256_add_ps(_mm256_load_ps((const float *)(v + i + 2)), _mm256_load_ps((const float *)(v + i + 3))));
        s2 = _mm256_add_ps(s2, _mm256_add_ps(_mm256_load_ps((const float *)(v + i + 4)), _mm256_load_ps((const float *)(v + i + 5))));
        s3 = _mm256_add_ps(s3, _mm256_add_ps(_mm256_load_ps((const float *)(v + i + 6)), _mm256_load_ps((const float *)(v + i + 7))));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

// MARK: - AVX-512 (float scan; the int8 and fp16 scans use the AVX2 kernels)

// Lane l of the 8-wide result = fold(a_l) with the canonical tree.
FM_AVX512 FM_INLINE __m256 fold16(__m512 a) {
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

FM_AVX512 FM_INLINE __m256 rows8_avx512(const float *r0, const float *r1, const float *r2, const float *r3,
                                        const float *r4, const float *r5, const float *r6, const float *r7,
                                        const float *q, size_t chunks16) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t c = 0; c < chunks16; c++) {
        size_t o = 16 * c;
        __m512 qv = _mm512_loadu_ps(q + o);
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + o), qv, a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + o), qv, a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + o), qv, a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + o), qv, a3);
        a4 = _mm512_fmadd_ps(_mm512_loadu_ps(r4 + o), qv, a4);
        a5 = _mm512_fmadd_ps(_mm512_loadu_ps(r5 + o), qv, a5);
        a6 = _mm512_fmadd_ps(_mm512_loadu_ps(r6 + o), qv, a6);
        a7 = _mm512_fmadd_ps(_mm512_loadu_ps(r7 + o), qv, a7);
    }
    return reduce8_avx2(fold16(a0), fold16(a1), fold16(a2), fold16(a3), fold16(a4), fold16(a5), fold16(a6),
                        fold16(a7));
}

FM_AVX512 FM_INLINE __m256 tile2x4_avx512(const float *r, size_t stride, const float *q, size_t chunks16) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    const float *r1 = r + stride, *q1 = q + stride, *q2 = q + 2 * stride, *q3 = q + 3 * stride;
    for (size_t c = 0; c < chunks16; c++) {
        size_t o = 16 * c;
        __m512 x0 = _mm512_loadu_ps(r + o), x1 = _mm512_loadu_ps(r1 + o), qv;
        qv = _mm512_loadu_ps(q + o);
        a0 = _mm512_fmadd_ps(x0, qv, a0);
        a1 = _mm512_fmadd_ps(x1, qv, a1);
        qv = _mm512_loadu_ps(q1 + o);
        a2 = _mm512_fmadd_ps(x0, qv, a2);
        a3 = _mm512_fmadd_ps(x1, qv, a3);
        qv = _mm512_loadu_ps(q2 + o);
        a4 = _mm512_fmadd_ps(x0, qv, a4);
        a5 = _mm512_fmadd_ps(x1, qv, a5);
        qv = _mm512_loadu_ps(q3 + o);
        a6 = _mm512_fmadd_ps(x0, qv, a6);
        a7 = _mm512_fmadd_ps(x1, qv, a7);
    }
    return reduce8_avx2(fold16(a0), fold16(a1), fold16(a2), fold16(a3), fold16(a4), fold16(a5), fold16(a6),
                        fold16(a7));
}

FM_AVX512 FM_INLINE void search_avx512_body(const float *base, size_t n, size_t stride, const uint32_t *rs,
                                            const float *queries, size_t nq, topm *t, size_t chunks16) {
    size_t i = 0, nq4 = nq & ~(size_t)3;
    const int pf = n * stride * sizeof(float) > ((size_t)4 << 20);
    for (; i + 8 <= n; i += 8) {
        const float *r = base + i * stride;
        if (pf && i + (FM_PF_BLOCKS + 1) * 8 <= n) prefetch_block(r + FM_PF_BLOCKS * 8 * stride, 8 * stride * sizeof(float));
        for (size_t g = 0; g < nq4; g += 4) {
            float sc[8][8];
            const float *q = queries + g * stride;
            for (size_t p = 0; p < 4; p++)
                _mm256_storeu_ps(sc[p], tile2x4_avx512(r + 2 * p * stride, stride, q, chunks16));
            for (size_t k = 0; k < 4; k++) {
                float v[8];
                for (size_t p = 0; p < 4; p++) {
                    v[2 * p] = sc[p][2 * k];
                    v[2 * p + 1] = sc[p][2 * k + 1];
                }
                offer8_avx2(&t[g + k], _mm256_loadu_ps(v), i, 8, rs);
            }
        }
        for (size_t j = nq4; j < nq; j++) {
            const float *q = queries + j * stride;
            __m256 s = rows8_avx512(r, r + stride, r + 2 * stride, r + 3 * stride, r + 4 * stride, r + 5 * stride,
                                    r + 6 * stride, r + 7 * stride, q, chunks16);
            offer8_avx2(&t[j], s, i, 8, rs);
        }
    }
    if (i < n) {
        const float *p[8];
        for (size_t l = 0; l < 8; l++) p[l] = base + (i + l < n ? i + l : n - 1) * stride;
        for (size_t j = 0; j < nq; j++) {
            __m256 s = rows8_avx512(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], queries + j * stride, chunks16);
            offer8_avx2(&t[j], s, i, n - i, rs);
        }
    }
}

// One query against a gallery past L2 (the scan is bound by DRAM bandwidth): 32 rows per
// step, each row's 16-lane chain loaded row after row so the loads leave in address order,
// four 8-row reductions, then one masked compare of the 32 scores (bias added) against the
// threshold kept in a register; only a lane above it takes the insertion path. The same
// arithmetic per score as rows8_avx512 (chain over the chunks in order, fold16, the tree).
// No software prefetch: measured slower here than the hardware prefetcher alone.
#define FM_ROWS1 32
FM_AVX512 FM_INLINE void search1_avx512_body(const float *base, size_t n, size_t stride, const uint32_t *rs,
                                             const float *q, topm *t, size_t chunks16) {
    __m512 qv[8];
    for (size_t c = 0; c < 8; c++) qv[c] = c < chunks16 ? _mm512_loadu_ps(q + 16 * c) : _mm512_setzero_ps();
    __m256 thr = _mm256_set1_ps(t->thr);
    const float *bias = t->bias;
    size_t i = 0;
    for (; i + FM_ROWS1 <= n; i += FM_ROWS1) {
        const float *r = base + i * stride;
        __m256 s[FM_ROWS1 / 8];
        for (size_t h = 0; h < FM_ROWS1 / 8; h++) {
            __m512 a[8];
            for (size_t j = 0; j < 8; j++) {
                const float *x = r + (8 * h + j) * stride;
                __m512 acc = _mm512_setzero_ps();
                if (chunks16 == 8) {
                    for (size_t c = 0; c < 8; c++) acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16 * c), qv[c], acc);
                } else {
                    for (size_t c = 0; c < chunks16; c++)
                        acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16 * c), _mm512_loadu_ps(q + 16 * c), acc);
                }
                a[j] = acc;
            }
            s[h] = reduce8_avx2(fold16(a[0]), fold16(a[1]), fold16(a[2]), fold16(a[3]), fold16(a[4]), fold16(a[5]),
                                fold16(a[6]), fold16(a[7]));
            if (bias) s[h] = _mm256_add_ps(s[h], _mm256_loadu_ps(bias + i + 8 * h));
        }
        unsigned mask = 0;
        for (size_t h = 0; h < FM_ROWS1 / 8; h++) mask |= (unsigned)_mm256_cmp_ps_mask(s[h], thr, _CMP_GT_OQ) << (8 * h);
        if (__builtin_expect(mask != 0, 0)) {
            float v[FM_ROWS1];
            for (size_t h = 0; h < FM_ROWS1 / 8; h++) _mm256_storeu_ps(v + 8 * h, s[h]);
            topm_offer_lanes(t, v, mask, i, rs);
            thr = _mm256_set1_ps(t->thr);
        }
    }
    for (; i < n; i += 8) {
        const float *p[8];
        for (size_t l = 0; l < 8; l++) p[l] = base + (i + l < n ? i + l : n - 1) * stride;
        offer8_avx2(t, rows8_avx512(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], q, chunks16), i,
                    n - i < 8 ? n - i : 8, rs);
    }
}

FM_AVX512 static void search_avx512(const float *base, size_t n, size_t stride, const uint32_t *rs,
                                    const float *queries, size_t nq, topm *t) {
    // Cache-resident galleries are compute-bound: the 8-row interleaved block is faster there.
    if (nq == 1 && n * stride * sizeof(float) > ((size_t)4 << 20)) {
        if (stride == 128) search1_avx512_body(base, n, 128, rs, queries, t, 8);
        else search1_avx512_body(base, n, stride, rs, queries, t, stride / 16);
        return;
    }
    if (stride == 128) search_avx512_body(base, n, 128, rs, queries, nq, t, 8);
    else search_avx512_body(base, n, stride, rs, queries, nq, t, stride / 16);
}

FM_AVX512 static void rerank_avx512(const float *base, size_t stride, const uint32_t *rs, const uint32_t *rows,
                                    size_t nrows, const float *q, topm *t) {
    for (size_t i = 0; i < nrows; i += 8) {
        const float *p[8];
        uint32_t rr[8];
        size_t valid = nrows - i < 8 ? nrows - i : 8;
        for (size_t l = 0; l < 8; l++) {
            rr[l] = rows[l < valid ? i + l : nrows - 1];
            p[l] = base + (size_t)rr[l] * stride;
        }
        __m256 s = rows8_avx512(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], q, stride / 16);
        float v[8];
        _mm256_storeu_ps(v, s);
        for (size_t l = 0; l < valid; l++) {
            float sc = v[l] + fm_bias(t->bias, rr[l]);
            if (sc > t->thr) topm_offer(t, sc, rr[l], rs[rr[l]]);
        }
    }
}

#endif // FM_X86

// MARK: - NEON (bit-identical to scalar and AVX2: two 4-lane halves of the 8 lanes)

#if defined(FM_ARM)

static inline float reduce_neon(float32x4_t lo, float32x4_t hi) {
    float32x4_t p = vpaddq_f32(lo, hi); // l0+l1, l2+l3, l4+l5, l6+l7
    float32x4_t pp = vpaddq_f32(p, p);  // (l0+l1)+(l2+l3), (l4+l5)+(l6+l7)
    return vgetq_lane_f32(pp, 0) + vgetq_lane_f32(pp, 1);
}

static inline void rows4_neon(const float *r0, const float *r1, const float *r2, const float *r3, const float *q,
                              size_t stride, float out[4]) {
    float32x4_t l0 = vdupq_n_f32(0), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0, h3 = l0;
    for (size_t o = 0; o < stride; o += 8) {
        float32x4_t ql = vld1q_f32(q + o), qh = vld1q_f32(q + o + 4);
        l0 = vfmaq_f32(l0, vld1q_f32(r0 + o), ql);
        h0 = vfmaq_f32(h0, vld1q_f32(r0 + o + 4), qh);
        l1 = vfmaq_f32(l1, vld1q_f32(r1 + o), ql);
        h1 = vfmaq_f32(h1, vld1q_f32(r1 + o + 4), qh);
        l2 = vfmaq_f32(l2, vld1q_f32(r2 + o), ql);
        h2 = vfmaq_f32(h2, vld1q_f32(r2 + o + 4), qh);
        l3 = vfmaq_f32(l3, vld1q_f32(r3 + o), ql);
        h3 = vfmaq_f32(h3, vld1q_f32(r3 + o + 4), qh);
    }
    out[0] = reduce_neon(l0, h0);
    out[1] = reduce_neon(l1, h1);
    out[2] = reduce_neon(l2, h2);
    out[3] = reduce_neon(l3, h3);
}

static void search_neon(const float *base, size_t n, size_t stride, const uint32_t *rs, const float *queries,
                        size_t nq, topm *t) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r = base + i * stride;
        for (size_t j = 0; j < nq; j++) {
            float v[4];
            rows4_neon(r, r + stride, r + 2 * stride, r + 3 * stride, queries + j * stride, stride, v);
            for (unsigned l = 0; l < 4; l++) v[l] += fm_bias(t[j].bias, i + l);
            unsigned mask = 0;
            for (unsigned l = 0; l < 4; l++) mask |= (unsigned)(v[l] > t[j].thr) << l;
            topm_offer_lanes(&t[j], v, mask, i, rs);
        }
    }
    for (; i < n; i++)
        for (size_t j = 0; j < nq; j++) {
            float s = dot_scalar(base + i * stride, queries + j * stride, stride) + fm_bias(t[j].bias, i);
            if (s > t[j].thr) topm_offer(&t[j], s, (uint32_t)i, rs[i]);
        }
}

static long scan_i8_neon(const int8_t *base, const float *scales, size_t n, size_t stride, const uint32_t *rs,
                         const int8_t *q, float qscale, collector *c) {
    for (size_t i = 0; i < n && !c->overflow; i++) {
        const int8_t *x = base + i * stride;
        int32x4_t acc = vdupq_n_s32(0);
        for (size_t o = 0; o < stride; o += 16) {
            int8x16_t xv = vld1q_s8(x + o), qv = vld1q_s8(q + o);
            int16x8_t p = vmull_s8(vget_low_s8(xv), vget_low_s8(qv));
            p = vmlal_s8(p, vget_high_s8(xv), vget_high_s8(qv)); // |sum| <= 2 * 127 * 127, fits int16
            acc = vpadalq_s16(acc, p);
        }
        float v = ((float)vaddvq_s32(acc) * scales[i]) * qscale + fm_bias(c->t.bias, i);
        collector_lanes(c, &v, i, 1, rs);
    }
    return collector_finish(c);
}

static long scan_f16_neon(const uint16_t *base, size_t n, size_t stride, const uint32_t *rs, const float *q,
                          collector *c) {
    for (size_t i = 0; i < n && !c->overflow; i++) {
        const uint16_t *x = base + i * stride;
        float32x4_t lo = vdupq_n_f32(0), hi = lo;
        for (size_t o = 0; o < stride; o += 8) {
            float32x4_t xl = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + o)));
            float32x4_t xh = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + o + 4)));
            lo = vfmaq_f32(lo, xl, vld1q_f32(q + o));
            hi = vfmaq_f32(hi, xh, vld1q_f32(q + o + 4));
        }
        float v = reduce_neon(lo, hi) + fm_bias(c->t.bias, i);
        collector_lanes(c, &v, i, 1, rs);
    }
    return collector_finish(c);
}

#endif // FM_ARM

// MARK: - Public entry points

void fm_search_f32(const float *base, const float *bias, size_t n, size_t stride, const uint32_t *row_student,
                   const float *queries, size_t nq, size_t m, fm_hit *hits, size_t *counts) {
    if (nq == 0) return;
    if (n == 0 || m == 0) {
        for (size_t j = 0; j < nq; j++) counts[j] = 0;
        return;
    }
    int isa = fm_active_isa();
    if (isa == FM_ISA_SCALAR) {
        search_scalar(base, bias, n, stride, row_student, queries, nq, m, hits, counts);
        return;
    }
    topm one, *t = nq == 1 ? &one : malloc(nq * sizeof(topm));
    if (!t) { // out of memory for the bookkeeping: the scalar path needs none
        search_scalar(base, bias, n, stride, row_student, queries, nq, m, hits, counts);
        return;
    }
    for (size_t j = 0; j < nq; j++) topm_init(&t[j], hits + j * m, m, bias);
    switch (isa) {
#if defined(FM_X86)
    case FM_ISA_AVX512: search_avx512(base, n, stride, row_student, queries, nq, t); break;
    case FM_ISA_AVX2: search_avx2(base, n, stride, row_student, queries, nq, t); break;
#endif
#if defined(FM_ARM)
    case FM_ISA_NEON: search_neon(base, n, stride, row_student, queries, nq, t); break;
#endif
    default: break;
    }
    for (size_t j = 0; j < nq; j++) counts[j] = t[j].len;
    if (t != &one) free(t);
}

void fm_rerank_f32(const float *base, const float *bias, size_t stride, const uint32_t *row_student,
                   const uint32_t *rows, size_t nrows, const float *query, size_t m, fm_hit *hits, size_t *count) {
    topm t;
    topm_init(&t, hits, m, bias);
    if (nrows == 0 || m == 0) {
        *count = 0;
        return;
    }
    switch (fm_active_isa()) {
#if defined(FM_X86)
    case FM_ISA_AVX512: rerank_avx512(base, stride, row_student, rows, nrows, query, &t); break;
    case FM_ISA_AVX2: rerank_avx2(base, stride, row_student, rows, nrows, query, &t); break;
#endif
    default: rerank_scalar(base, bias, stride, row_student, rows, nrows, query, m, hits, count); return;
    }
    *count = t.len;
}

static int collector_init(collector *c, size_t m, const float *bias, float window, uint32_t *cand, size_t cap,
                          fm_hit *scratch) {
    topm_init(&c->t, scratch, m, bias);
    c->window = window;
    c->cand = cand;
    c->cap = cap;
    c->nc = 0;
    c->overflow = 0;
    c->cs = malloc((cap ? cap : 1) * sizeof(float));
    return c->cs ? 0 : -1;
}

long fm_scan_i8(const int8_t *base, const float *scales, const float *bias, size_t n, size_t stride,
                const uint32_t *row_student, const int8_t *query, float qscale, size_t m, float window, uint32_t *cand,
                size_t cap) {
    if (n == 0 || m == 0) return 0;
    fm_hit *scratch = malloc(m * sizeof(fm_hit));
    collector c;
    if (!scratch || collector_init(&c, m, bias, window, cand, cap, scratch) != 0) {
        free(scratch);
        return -1;
    }
    long r;
    switch (fm_active_isa()) {
#if defined(FM_X86)
    case FM_ISA_AVX512:
    case FM_ISA_AVX2: r = scan_i8_avx2(base, scales, n, stride, row_student, query, qscale, &c); break;
#endif
#if defined(FM_ARM)
    case FM_ISA_NEON: r = scan_i8_neon(base, scales, n, stride, row_student, query, qscale, &c); break;
#endif
    default: r = scan_i8_scalar(base, scales, n, stride, row_student, query, qscale, &c); break;
    }
    free(c.cs);
    free(scratch);
    return r;
}

long fm_scan_f16(const uint16_t *base, const float *bias, size_t n, size_t stride, const uint32_t *row_student,
                 const float *query, size_t m, float window, uint32_t *cand, size_t cap) {
    if (n == 0 || m == 0) return 0;
    fm_hit *scratch = malloc(m * sizeof(fm_hit));
    collector c;
    if (!scratch || collector_init(&c, m, bias, window, cand, cap, scratch) != 0) {
        free(scratch);
        return -1;
    }
    long r;
    switch (fm_active_isa()) {
#if defined(FM_X86)
    case FM_ISA_AVX512:
    case FM_ISA_AVX2: r = scan_f16_avx2(base, n, stride, row_student, query, &c); break;
#endif
#if defined(FM_ARM)
    case FM_ISA_NEON: r = scan_f16_neon(base, n, stride, row_student, query, &c); break;
#endif
    default: r = scan_f16_scalar(base, n, stride, row_student, query, &c); break;
    }
    free(c.cs);
    free(scratch);
    return r;
}

float fm_stream_read(const void *p, size_t bytes) {
#if defined(FM_X86)
    if (fm_active_isa() != FM_ISA_SCALAR) return stream_avx2(p, bytes);
#endif
    const float *f = (const float *)p;
    float s[16] = {0};
    for (size_t i = 0; i + 16 <= bytes / 4; i += 16)
        for (int l = 0; l < 16; l++) s[l] += f[i + l];
    float r = 0;
    for (int l = 0; l < 16; l++) r += s[l];
    return r;
}

void *fm_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    size_t align = bytes >= 2 * huge ? huge : 64;
    size_t size = (bytes + align - 1) / align * align;
    void *p = NULL;
    if (size == 0) size = align;
    if (posix_memalign(&p, align, size) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == huge) (void)madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
}

void fm_free(void *p) { free(p); }
