// Distance kernels for FaceMatch, chosen at run time by CPU features.
//
// Plain C behind the Swift API (issue 4): Swift SIMD code did not reach the
// memory-bandwidth floor, these kernels do. Every function is reentrant and
// keeps no state except the chosen instruction set (an atomic int).
//
// Conventions shared by all kernels
// - A matrix is `n` rows of `stride` elements; `stride` is a multiple of 32 and
//   the padding past the real dimension is zero, so padding never changes a dot.
// - A *score* is the dot product of a query with a row plus the row's bias
//   (`bias` may be NULL: no bias). FaceMatch passes the raw rows and
//   bias[r] = -|row r|^2 / 2, so score = q.r - |r|^2/2 = (|q|^2 - |q - r|^2) / 2:
//   a higher score is a smaller Euclidean distance, exactly.
// - Results are the best `m` *distinct students*: each student is represented
//   by its best row. Order: score descending, then row index ascending, so ties
//   are broken deterministically by the earlier row.
// - The float arithmetic of one (row, query) score is the same in the full scan,
//   in the batch scan and in fm_rerank_f32, for a given instruction set: re-ranking
//   reproduces the full scan bit for bit.
#ifndef SIMD_KERNELS_H
#define SIMD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One result of a search: the student's best row and its score.
typedef struct fm_hit {
    float score;
    uint32_t row;
    uint32_t student;
} fm_hit;

enum {
    FM_ISA_AUTO = -1,
    FM_ISA_SCALAR = 0,
    FM_ISA_AVX2 = 1,
    FM_ISA_AVX512 = 2,
    FM_ISA_NEON = 3,
};

/// The best instruction set this CPU supports.
int fm_detected_isa(void);
/// The instruction set the kernels use now.
int fm_active_isa(void);
/// Forces an instruction set (tests, benchmarks); FM_ISA_AUTO restores the detected one.
/// Returns 0, or -1 when this CPU cannot run it (nothing changes then).
int fm_set_isa(int isa);
/// "scalar", "avx2", "avx512", "neon".
const char *fm_isa_name(int isa);

/// Exact search. base: n x stride floats; row_student: n student indices;
/// queries: nq x stride floats. For query i, hits[i*m ..] receives up to m hits
/// (best distinct students, ordered as above) and counts[i] how many.
void fm_search_f32(const float *base, const float *bias, size_t n, size_t stride, const uint32_t *row_student,
                   const float *queries, size_t nq, size_t m, fm_hit *hits, size_t *counts);

/// The same top-m selection as fm_search_f32 restricted to the listed rows
/// (ascending row order), with the identical float arithmetic.
void fm_rerank_f32(const float *base, const float *bias, size_t stride, const uint32_t *row_student,
                   const uint32_t *rows, size_t nrows, const float *query, size_t m,
                   fm_hit *hits, size_t *count);

/// Approximate int8 scan that returns the candidate rows which may belong to the
/// exact top-m. Row r approximates x_r ~ scales[r] * base[r]; the query
/// q ~ qscale * query; the approximate score adds bias[r] like the float scan.
/// `window` must bound |exact score - approximate score| twice over (2 * epsilon). A row is kept when its approximate score is at least the
/// m-th best distinct student's approximate score minus `window`.
/// Writes ascending rows into cand (capacity cap) and returns how many, or -1 when
/// more than cap rows qualify (the caller then falls back to the float scan).
long fm_scan_i8(const int8_t *base, const float *scales, const float *bias, size_t n, size_t stride,
                const uint32_t *row_student, const int8_t *query, float qscale, size_t m,
                float window, uint32_t *cand, size_t cap);

/// As fm_scan_i8 for IEEE half-precision rows and a float query.
long fm_scan_f16(const uint16_t *base, const float *bias, size_t n, size_t stride, const uint32_t *row_student,
                 const float *query, size_t m, float window, uint32_t *cand, size_t cap);

/// float -> IEEE half (round to nearest even) and back, n values.
void fm_f32_to_f16(const float *src, uint16_t *dst, size_t n);
void fm_f16_to_f32(const uint16_t *src, float *dst, size_t n);

/// Reads `bytes` bytes (a multiple of 64) as fast as one core can; returns a
/// value that depends on every byte so the read cannot be optimised away.
/// Used by the benchmark to measure the memory-bandwidth floor.
float fm_stream_read(const void *p, size_t bytes);

/// 64-byte aligned allocation; large blocks are 2 MiB aligned and advised to use
/// transparent huge pages (fewer TLB misses while streaming the gallery).
void *fm_alloc(size_t bytes);
void fm_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
