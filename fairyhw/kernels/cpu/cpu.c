/* CPU kernels of the packed widely-linear layer: exact integer sums for int8 activations.
 *
 * Weights are the golden model's packed codes as fairyhw.model.pack.pack_codes writes them: uint8
 * [mats][n][row_bytes], row_bytes = ceil(m/4), code j of a row at bits [2(j%4)+1 : 2(j%4)] of byte j/4.
 * Code k stands for i^k: 0 = +1, 1 = +i, 2 = -1, 3 = -i, that is (a, b) = (1,0), (0,1), (-1,0), (0,-1).
 * Activations are int8 p, q (tokens x m). Output int32 [tokens][mats][n][4] = sum a p, sum a q,
 * sum b p, sum b q per row, with q negated for the matrices flagged conj (W on conj(x)).
 *
 * Direct kernels (AVX-512 VNNI, AVX2, scalar). The activations are permuted once per call so that vector
 * byte i of "phase" k meets code k of code byte i: within each block of 4*V codes (V = vector bytes),
 * x'[V*k + i] = x[4*i + k]. AVX-512 masks bit planes out of the code bytes (no table, see rows4_512) and
 * dots them with vpdpbusd; AVX2 turns a code byte shifted right by 2k, masked, into (a+1) and (b+1) in
 * {0,1,2} with 16-entry vpshufb tables and dots them with vpmaddubsw; the activation sums are subtracted
 * at the end.
 *
 * Table-lookup kernel (portable C, in the spirit of T-MAC / FairyFuse): for every group of four
 * consecutive inputs (one code byte) it pre-adds the 256 possible values of sum a p, a q, b p, b q into
 * int16 tables once per token; then every code byte of every row is a table index, four adds and no
 * decode. The tables take 2 KiB per four inputs, so they live in L2/L3, not in registers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define FAIRY_API __attribute__((visibility("default")))
FAIRY_API int fairy_cpu_threads(void);

/* a and b for code k = 0..3; the vector kernels' tables hold a+1 = {2,1,0,1} and b+1 = {1,2,1,0} */
static const int A_OF[4] = {1, 0, -1, 0};
static const int B_OF[4] = {0, 1, 0, -1};

/* this OpenMP thread's share [lo, hi) of total items split evenly (the whole range outside OpenMP) */
static inline void thread_share(int64_t total, int64_t *lo, int64_t *hi) {
    int nt = 1, id = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads(); id = omp_get_thread_num();
#endif
    int64_t per = (total + nt - 1) / nt;
    *lo = id * per < total ? id * per : total;
    *hi = *lo + per < total ? *lo + per : total;
}

/* Σp and Σq of each token (local sums: stores to sp through int8 pointers' aliasing kept GCC from
 * vectorizing the loop, 1-2 us a call at m = 2048-5504) */
static void token_sums(const int8_t *p, const int8_t *q, int64_t m, int tokens, int32_t *sp, int32_t *sq) {
    for (int t = 0; t < tokens; t++) {
        const int8_t *pt = p + (int64_t)t * m, *qt = q + (int64_t)t * m;
        int32_t a = 0, b = 0;
        for (int64_t j = 0; j < m; j++) { a += pt[j]; b += qt[j]; }
        sp[t] = a; sq[t] = b;
    }
}

/* Permute one token's activations into the phase order of blocks of 4*V codes, zero padded. */
static void permute(const int8_t *x, int64_t m, int64_t mpad, int V, int8_t *out) {
    memset(out + m / (4 * V) * 4 * V, 0, (size_t)(mpad - m / (4 * V) * 4 * V));
    for (int64_t b = 0; b < mpad; b += 4 * V) {
        const int8_t *xb = x + b;
        int8_t *ob = out + b;
        if (b + 4 * V <= m) {
            for (int i = 0; i < V; i++) {
                ob[i] = xb[4 * i]; ob[V + i] = xb[4 * i + 1];
                ob[2 * V + i] = xb[4 * i + 2]; ob[3 * V + i] = xb[4 * i + 3];
            }
        } else {
            for (int64_t r = 0; b + r < m; r++) ob[(int64_t)V * (r % 4) + r / 4] = xb[r];
        }
    }
}

static inline void store_sums(int32_t *o, int32_t ap, int32_t aq, int32_t bp, int32_t bq,
                              int32_t sp, int32_t sq, int conj) {
    ap -= sp; aq -= sq; bp -= sp; bq -= sq;
    if (conj) { aq = -aq; bq = -bq; }
    o[0] = ap; o[1] = aq; o[2] = bp; o[3] = bq;
}

/* ---------------------------------------------------------------- scalar reference kernel */
static void rows_scalar(const uint8_t *codes, int64_t row_bytes, int64_t m, int64_t r0, int64_t r1,
                        int64_t n, int mats_total, const int8_t *p, const int8_t *q, int tokens,
                        const int32_t *conj, int32_t *out) {
    (void)mats_total;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * row_bytes;
        int64_t mat = r / n, i = r % n;
        for (int t = 0; t < tokens; t++) {
            const int8_t *pt = p + (int64_t)t * m, *qt = q + (int64_t)t * m;
            int32_t ap = 0, aq = 0, bp = 0, bq = 0;
            for (int64_t j = 0; j < m; j++) {
                int k = (row[j >> 2] >> (2 * (j & 3))) & 3;
                ap += A_OF[k] * pt[j]; aq += A_OF[k] * qt[j];
                bp += B_OF[k] * pt[j]; bq += B_OF[k] * qt[j];
            }
            int32_t *o = out + (((int64_t)t * mats_total + mat) * n + i) * 4;
            store_sums(o, ap, aq, bp, bq, 0, 0, conj[mat]);
        }
    }
}

/* ---------------------------------------------------------------- AVX-512 VNNI direct */
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2")))

T512 static inline int32_t hsum512(__m512i v) { return _mm512_reduce_add_epi32(v); }

/* Bit planes: with h a code's high bit and x = h xor its low bit, a = 1 - h - x and b = x - h, so
 * Σap = Σp - Σhp - Σxp and Σbp = Σxp - Σhp (likewise q). In a code byte w shifted right by 2k, phase k's
 * h bit sits under the mask 0x02 and its x bit under 0x01 of v = w ^ (w >> 1) shifted likewise: masked,
 * the bytes are vpdpbusd's u8 operand as they stand (2 h or x), the same scale in every phase, so a row
 * needs four accumulators and four rows go in one pass, reading the activations once for all four.
 * Per 64 code bytes of a row: 16 vpdpbusd, the bound (one a cycle on Zen 4), beside 7 shifts, 1 xor
 * and 8 ANDs, which run on the pipes vpdpbusd leaves free (measured: 16.0 cycles for all 32). What the
 * single-scale planes buy over a vpermb table decode (which also fits beside vpdpbusd) is four rows a
 * pass: the activations are loaded once for four rows and the per-row sums are paid once per four. */
#define ROW512(R)                                                                                   \
    do {                                                                                            \
        const __m512i v_ = _mm512_xor_si512(w##R, _mm512_srli_epi16(w##R, 1));                     \
        __m512i h_, x_;                                                                             \
        h_ = _mm512_and_si512(w##R, m2); x_ = _mm512_and_si512(v_, m1);                             \
        s##R##0 = _mm512_dpbusd_epi32(s##R##0, h_, p0); s##R##1 = _mm512_dpbusd_epi32(s##R##1, h_, q0); \
        s##R##2 = _mm512_dpbusd_epi32(s##R##2, x_, p0); s##R##3 = _mm512_dpbusd_epi32(s##R##3, x_, q0); \
        h_ = _mm512_and_si512(_mm512_srli_epi16(w##R, 2), m2); x_ = _mm512_and_si512(_mm512_srli_epi16(v_, 2), m1); \
        s##R##0 = _mm512_dpbusd_epi32(s##R##0, h_, p1); s##R##1 = _mm512_dpbusd_epi32(s##R##1, h_, q1); \
        s##R##2 = _mm512_dpbusd_epi32(s##R##2, x_, p1); s##R##3 = _mm512_dpbusd_epi32(s##R##3, x_, q1); \
        h_ = _mm512_and_si512(_mm512_srli_epi16(w##R, 4), m2); x_ = _mm512_and_si512(_mm512_srli_epi16(v_, 4), m1); \
        s##R##0 = _mm512_dpbusd_epi32(s##R##0, h_, p2); s##R##1 = _mm512_dpbusd_epi32(s##R##1, h_, q2); \
        s##R##2 = _mm512_dpbusd_epi32(s##R##2, x_, p2); s##R##3 = _mm512_dpbusd_epi32(s##R##3, x_, q2); \
        h_ = _mm512_and_si512(_mm512_srli_epi16(w##R, 6), m2); x_ = _mm512_and_si512(_mm512_srli_epi16(v_, 6), m1); \
        s##R##0 = _mm512_dpbusd_epi32(s##R##0, h_, p3); s##R##1 = _mm512_dpbusd_epi32(s##R##1, h_, q3); \
        s##R##2 = _mm512_dpbusd_epi32(s##R##2, x_, p3); s##R##3 = _mm512_dpbusd_epi32(s##R##3, x_, q3); \
    } while (0)
#define STEP512(LOAD)                                                                               \
    do {                                                                                            \
        const __m512i p0 = _mm512_loadu_si512(pp + 4 * c), p1 = _mm512_loadu_si512(pp + 4 * c + 64), \
                      p2 = _mm512_loadu_si512(pp + 4 * c + 128), p3 = _mm512_loadu_si512(pp + 4 * c + 192), \
                      q0 = _mm512_loadu_si512(qq + 4 * c), q1 = _mm512_loadu_si512(qq + 4 * c + 64), \
                      q2 = _mm512_loadu_si512(qq + 4 * c + 128), q3 = _mm512_loadu_si512(qq + 4 * c + 192); \
        __m512i w0 = LOAD(r0), w1 = LOAD(r1), w2 = LOAD(r2), w3 = LOAD(r3);                         \
        __asm__("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3)); /* one load each, not one per use */  \
        ROW512(0); ROW512(1); ROW512(2); ROW512(3);                                                 \
        /* keeps each sum in one register: without it GCC copies them every iteration */           \
        __asm__("" : "+v"(s00), "+v"(s01), "+v"(s02), "+v"(s03), "+v"(s10), "+v"(s11), "+v"(s12),    \
                "+v"(s13));                                                                         \
        __asm__("" : "+v"(s20), "+v"(s21), "+v"(s22), "+v"(s23), "+v"(s30), "+v"(s31), "+v"(s32),    \
                "+v"(s33));                                                                         \
    } while (0)
#define FULL512(R) _mm512_loadu_si512(R + c)
#define PART512(R) _mm512_maskz_loadu_epi8(keep, R + c)

/* how far ahead the codes are prefetched: the four rows are one contiguous stream, read 256 bytes an
 * iteration; without it a thread read 5 GB/s from DRAM, with 16 KiB ahead 10-12 GB/s */
#ifndef PF512
#define PF512 16384
#endif
/* One token, rows r0..r3 (repeats allowed): pl[r] = Σhp, Σhq, Σxp, Σxq of row r. A lane grows by at most
 * 2^12 an iteration of 64 code bytes; the caller keeps m <= 2^23 (2^15 iterations), so int32 holds. */
T512 static void rows4_512(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, const uint8_t *r3,
                           int64_t row_bytes, const int8_t *pp, const int8_t *qq, int32_t pl[4][4]) {
    const __m512i m1 = _mm512_set1_epi8(0x01), m2 = _mm512_set1_epi8(0x02);
    __m512i s00 = _mm512_setzero_si512(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00,
            s13 = s00, s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
    int64_t c = 0;
    for (; c + 64 <= row_bytes; c += 64) {
        for (int k = 0; k < 4; k++)
            _mm_prefetch((const char *)(r0 + 4 * c + PF512 + 64 * k), _MM_HINT_T0);
        STEP512(FULL512);
    }
    if (c < row_bytes) {    /* the rows' last, partial vector (a masked load in the loop cost 15%): the
                             * missing codes are zero and meet zero padded activations */
        const __mmask64 keep = ((__mmask64)1 << (row_bytes - c)) - 1;
        STEP512(PART512);
    }
    /* sixteen horizontal sums as one tree: halves to 256 bits, then hadd; the h sums carry 2 */
    __m512i z[16] = {s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33};
    for (int r = 0; r < 4; r++) {
        __m256i y[4];
        for (int u = 0; u < 4; u++) {
            __m512i v = u < 2 ? _mm512_srai_epi32(z[4 * r + u], 1) : z[4 * r + u];
            y[u] = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
        }
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(y[0], y[1]), _mm256_hadd_epi32(y[2], y[3]));
        _mm_storeu_si128((__m128i *)pl[r], _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
    }
}
#undef PART512
#undef FULL512
#undef STEP512
#undef ROW512

static inline void store_planes(int32_t *o, const int32_t pl[4], int32_t sp, int32_t sq, int conj) {
    /* Σap = Σp - Σhp - Σxp, Σbp = Σxp - Σhp */
    store_sums(o, sp - pl[0] - pl[2], sq - pl[1] - pl[3], pl[2] - pl[0], pl[3] - pl[1], 0, 0, conj);
}

static void rows_avx512(const uint8_t *codes, int64_t row_bytes, int64_t mpad, int64_t r0, int64_t r1,
                        int64_t n, int mats_total, const int8_t *pp, const int8_t *qq, int tokens,
                        const int32_t *sp, const int32_t *sq, const int32_t *conj, int32_t *out) {
    int32_t pl[4][4];
    /* row r is row r - mat * n of matrix mat: the matrix of each row is tracked, not divided out (four
     * 64-bit divisions a pass cost 3% on 512-byte rows) */
    int64_t mat0 = r0 / n, next = (mat0 + 1) * n;
    for (int64_t r = r0; r < r1; r += 4) {
        int nr = r1 - r < 4 ? (int)(r1 - r) : 4;          /* a last group of fewer rows repeats its last */
        const uint8_t *rp[4];
        int cj[4];
        for (int j = 0; j < 4; j++) rp[j] = codes + (r + (j < nr ? j : nr - 1)) * row_bytes;
        for (int j = 0; j < nr; j++) {
            if (r + j == next) { mat0++; next += n; }
            cj[j] = conj[mat0];
        }
        for (int t = 0; t < tokens; t++) {
            rows4_512(rp[0], rp[1], rp[2], rp[3], row_bytes, pp + (int64_t)t * mpad, qq + (int64_t)t * mpad, pl);
            /* (mat * n + i) is the row itself */
            int32_t *o = out + ((int64_t)t * mats_total * n + r) * 4;
            for (int j = 0; j < nr; j++) store_planes(o + 4 * j, pl[j], sp[t], sq[t], cj[j]);
        }
    }
}

/* ---------------------------------------------------------------- AVX2 direct */
#define T256 __attribute__((target("avx2,fma")))

T256 static inline int32_t hsum256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* One token of one row. (a+1) in 0..2 times int8 gives pair sums of at most 512 in magnitude
 * (vpmaddubsw cannot saturate), so the sums stay in int16 lanes for 8 blocks of 32 code bytes (4 phases
 * x 512 x 8 = 16384) and are widened to int32 (vpmaddwd by ones) once per 8 blocks, not every time. */
T256 static void row256(const uint8_t *row, int64_t row_bytes, const int8_t *pt, const int8_t *qt,
                        int32_t acc[4]) {
    const __m256i la = _mm256_setr_epi8(2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1,
                                        2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1);
    const __m256i lb = _mm256_setr_epi8(1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0,
                                        1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0);
    const __m256i m33 = _mm256_set1_epi8(0x33), ones = _mm256_set1_epi16(1);
    __m256i w32[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
    uint8_t tail[32];
    for (int64_t c0 = 0; c0 < row_bytes; c0 += 8 * 32) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        int64_t c1 = c0 + 8 * 32 < row_bytes ? c0 + 8 * 32 : row_bytes;
        for (int64_t c = c0; c < c1; c += 32) {
            __m256i w;
            if (row_bytes - c >= 32) {
                w = _mm256_loadu_si256((const __m256i *)(row + c));
            } else {
                memset(tail, 0, 32);
                memcpy(tail, row + c, (size_t)(row_bytes - c));
                w = _mm256_loadu_si256((const __m256i *)tail);
            }
            /* vpshufb reads bits 0-3 and 7 of an index byte; the tables repeat every 4 entries, so only
             * bit 7 must be clear: w & 0x33 indexes code 0 (code 2 sits in bits 4-5), its 16-bit
             * shift by 4 code 2 (bits 4-7 then hold the next byte's masked bits 0-3: bit 7 clear) */
            const __m256i i02 = _mm256_and_si256(w, m33), i13 = _mm256_and_si256(_mm256_srli_epi16(w, 2), m33);
            for (int k = 0; k < 4; k++) {
                __m256i idx = k == 0 ? i02 : k == 1 ? i13 : _mm256_srli_epi16(k == 2 ? i02 : i13, 4);
                __m256i wa = _mm256_shuffle_epi8(la, idx), wb = _mm256_shuffle_epi8(lb, idx);
                int64_t off = 4 * c + 32 * k;
                __m256i xp = _mm256_loadu_si256((const __m256i *)(pt + off));
                __m256i xq = _mm256_loadu_si256((const __m256i *)(qt + off));
                s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(wa, xp));
                s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(wa, xq));
                s2 = _mm256_add_epi16(s2, _mm256_maddubs_epi16(wb, xp));
                s3 = _mm256_add_epi16(s3, _mm256_maddubs_epi16(wb, xq));
                /* keep the four sums in registers: without this GCC interleaves the phases, runs out
                 * of the 16 ymm registers and keeps the sums on the stack (20% slower) */
                __asm__("" : "+x"(s0), "+x"(s1), "+x"(s2), "+x"(s3));
            }
        }
        w32[0] = _mm256_add_epi32(w32[0], _mm256_madd_epi16(s0, ones));
        w32[1] = _mm256_add_epi32(w32[1], _mm256_madd_epi16(s1, ones));
        w32[2] = _mm256_add_epi32(w32[2], _mm256_madd_epi16(s2, ones));
        w32[3] = _mm256_add_epi32(w32[3], _mm256_madd_epi16(s3, ones));
    }
    for (int u = 0; u < 4; u++) acc[u] = hsum256(w32[u]);
}

T256 static void rows_avx2(const uint8_t *codes, int64_t row_bytes, int64_t mpad, int64_t r0, int64_t r1,
                           int64_t n, int mats_total, const int8_t *pp, const int8_t *qq, int tokens,
                           const int32_t *sp, const int32_t *sq, const int32_t *conj, int32_t *out) {
    int32_t acc[4];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * row_bytes;
        int64_t mat = r / n, i = r % n;
        for (int t = 0; t < tokens; t++) {
            row256(row, row_bytes, pp + (int64_t)t * mpad, qq + (int64_t)t * mpad, acc);
            int32_t *o = out + (((int64_t)t * mats_total + mat) * n + i) * 4;
            store_sums(o, acc[0], acc[1], acc[2], acc[3], sp[t], sq[t], conj[mat]);
        }
    }
}

/* ---------------------------------------------------------------- AVX-512 table lookup */
/* Tables per token: for byte group g (inputs 4g..4g+3) and byte value v, int16 sums of a p, a q, b p, b q
 * over the four codes of v. Layout [g][v] of int16x4 (8 bytes), 2 KiB per group. */
static void build_tables(const int8_t *p, const int8_t *q, int64_t m, int64_t groups, int16_t *tab) {
    for (int64_t g = 0; g < groups; g++) {
        int8_t xp[4] = {0, 0, 0, 0}, xq[4] = {0, 0, 0, 0};
        for (int u = 0; u < 4 && 4 * g + u < m; u++) { xp[u] = p[4 * g + u]; xq[u] = q[4 * g + u]; }
        int16_t *tg = tab + g * 256 * 4;
        for (int v = 0; v < 256; v++) {
            int ap = 0, aq = 0, bp = 0, bq = 0;
            for (int u = 0; u < 4; u++) {
                int k = (v >> (2 * u)) & 3;
                ap += A_OF[k] * xp[u]; aq += A_OF[k] * xq[u];
                bp += B_OF[k] * xp[u]; bq += B_OF[k] * xq[u];
            }
            tg[4 * v + 0] = (int16_t)ap; tg[4 * v + 1] = (int16_t)aq;
            tg[4 * v + 2] = (int16_t)bp; tg[4 * v + 3] = (int16_t)bq;
        }
    }
}

static void rows_lut(const uint8_t *codes, int64_t row_bytes, int64_t r0, int64_t r1, int64_t n,
                     int mats_total, const int16_t *tabs, int tokens, const int32_t *conj, int32_t *out) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * row_bytes;
        int64_t mat = r / n, i = r % n;
        for (int t = 0; t < tokens; t++) {
            const int16_t *tab = tabs + (int64_t)t * row_bytes * 256 * 4;
            int32_t s[4] = {0, 0, 0, 0};
            for (int64_t g = 0; g < row_bytes; g++) {
                const int16_t *e = tab + (g * 256 + row[g]) * 4;
                s[0] += e[0]; s[1] += e[1]; s[2] += e[2]; s[3] += e[3];
            }
            int32_t *o = out + (((int64_t)t * mats_total + mat) * n + i) * 4;
            store_sums(o, s[0], s[1], s[2], s[3], 0, 0, conj[mat]);
        }
    }
}

/* ---------------------------------------------------------------- AVX-512 in-register tables (T-MAC style) */
/* The codes re-laid once (fairy_lut_layout), as T-MAC lays out its weights offline: the rows of all
 * matrices stacked in blocks of 16; a block's row bytes in 16-byte chunks c; chunk c is 4 vectors i of 64
 * bytes, and byte 4d + j of vector i is code byte 16c + 4i + j of row d, turned into a nibble pair: the
 * low nibble holds the h bits of its four codes, the high nibble their x bits (x = h xor l, the planes of
 * rows4_512). Rows past the last and bytes past a row's end are 0 (h = x = 0: they add nothing). The same
 * 2 bits a code, in another order: a block of 16 rows is 16 x ceil(row_bytes / 16) x 16 bytes.
 *
 * Tables, per token and per quad of four code bytes (16 inputs): for each part of the activations (p & 15,
 * p >> 4, q & 15, q >> 4, so that every entry fits a byte), 64 bytes, byte 16j + e = the sum of that part
 * over the inputs of code byte j of the quad whose bit is set in the nibble e (0..60, or -32..28).
 * Kernel: a vector of 64 nibble pairs holds 16 rows x 4 code bytes; the low nibbles with 16j added index
 * the tables by vpermb (64-entry table: the four code bytes' own 16-entry tables side by side), the
 * high nibbles likewise: 8 vpermb give Σ h p, Σ h q, Σ x p, Σ x q (lo and hi parts) of 16 rows x 16
 * inputs, with no products. Byte sums of four vectors cannot overflow (4 x 60, 4 x -32); vpdpbusd against
 * ones then adds the four bytes of each row (a dword is one row) into int32: no horizontal sums, the 16
 * lanes are the 16 rows. Two of the eight streams (Σ x q) skip the byte sums and go to vpdpbusd at once:
 * on Zen 4 vpdpbusd runs beside vpermb where byte adds compete with it (measured in a register-only
 * loop: 10.05 cycles against 10.35-10.9; in the kernel within noise). Per 64 code bytes: 8 vpermb, 4.5
 * byte adds, 3 index ops, 3.5 vpdpbusd; 11.0-11.4 cycles with codes and tables in cache (one thread). */
static uint8_t lut_nibbles[256];

__attribute__((constructor)) static void lut_init(void) {      /* when the library loads */
    for (int v = 0; v < 256; v++) {
        int o = 0;
        for (int j = 0; j < 4; j++) {
            int h = v >> (2 * j + 1) & 1, l = v >> (2 * j) & 1;
            o |= h << j | (h ^ l) << (4 + j);
        }
        lut_nibbles[v] = (uint8_t)o;
    }
}

FAIRY_API void fairy_lut_layout(const uint8_t *codes, int64_t rows, int64_t rb, uint8_t *out, int threads) {
    int64_t cq = (rb + 15) / 16, blocks = (rows + 15) / 16;
    if (threads < 1) threads = fairy_cpu_threads();
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        uint8_t *ob = out + b * cq * 256;
        memset(ob, 0, (size_t)(cq * 256));
        for (int d = 0; d < 16 && 16 * b + d < rows; d++) {
            const uint8_t *row = codes + (16 * b + d) * rb;
            for (int64_t k = 0; k < rb; k++)
                ob[(k >> 4) * 256 + ((k >> 2) & 3) * 64 + 4 * d + (k & 3)] = lut_nibbles[row[k]];
        }
    }
}

/* one token's tables [cq * 4 quads][4 parts][64] (inputs past m are 0). Per chunk of 64 inputs: the four
 * parts, then per quad and part four vpermb (input 4j + b to bytes 16j + e) added under the masks of the
 * nibbles e with bit b set: 128 vector ops a chunk (scalar, the same tables took 8-26 us a call). */
#define TLUT __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2")))
TLUT static void lut_tables(const int8_t *p, const int8_t *q, int64_t m, int64_t cq, int8_t *tab) {
    /* idx[k][b]: byte 16j + e takes input 4j + b of quad k; km[b]: the bytes whose nibble e has bit b */
    __m512i idx[4][4];
    __mmask64 km[4] = {0, 0, 0, 0};
    for (int b = 0; b < 4; b++) {
        uint8_t ib[64];
        for (int k = 0; k < 64; k++) {
            ib[k] = (uint8_t)(4 * (k >> 4) + b);
            if ((k & 15) >> b & 1) km[b] |= (__mmask64)1 << k;
        }
        for (int k = 0; k < 4; k++)
            idx[k][b] = _mm512_add_epi8(_mm512_loadu_si512(ib), _mm512_set1_epi8((char)(16 * k)));
    }
    const __m512i m0f = _mm512_set1_epi8(0x0f), e8 = _mm512_set1_epi8(8);
    for (int64_t c = 0; c < cq; c++) {
        int64_t left = m - 64 * c;
        __mmask64 keep = left >= 64 ? ~(__mmask64)0 : left <= 0 ? 0 : ((__mmask64)1 << left) - 1;
        __m512i part[4];
        for (int x = 0; x < 2; x++) {
            const __m512i v = _mm512_maskz_loadu_epi8(keep, (x ? q : p) + 64 * c);
            part[2 * x] = _mm512_and_si512(v, m0f);                                   /* v & 15 */
            /* v >> 4 (arithmetic): the high nibble, sign-extended by (h ^ 8) - 8 */
            part[2 * x + 1] = _mm512_sub_epi8(_mm512_xor_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), m0f), e8), e8);
        }
        for (int k = 0; k < 4; k++) {
            for (int s = 0; s < 4; s++) {
                __m512i t = _mm512_setzero_si512();
                for (int b = 0; b < 4; b++)
                    t = _mm512_mask_add_epi8(t, km[b], t, _mm512_permutexvar_epi8(idx[k][b], part[s]));
                _mm512_storeu_si512(tab + (4 * c + k) * 256 + 64 * s, t);
            }
        }
    }
}

/* prefetch into L2 (T1), each line twice, 16 and 32 KiB ahead. T0 at 4 KiB read 18-20 GB/s
 * from DRAM with 2 threads, T1 at 16 KiB 30-32. The second prefetch of each line gained 4% from DRAM at
 * plain reads under 35 GB/s and 7-10% at 35-53 GB/s (whole model, 2 threads, 1,500 passes alternating
 * with the one-prefetch code: 31.2 against 30.0 GB/s, 34.4 against 31.1 at a 49 GB/s read), nothing in
 * cache. docs/kernels.md lists the variants measured beside it. */
#ifndef PFLUT
#define PFLUT 16384
#endif

/* one block of 16 rows, one token: the sums of rows d < nr to o[4 d .. 4 d + 3] (rows under cj conjugated) */
TLUT static void lut16_512(const uint8_t *blk, int64_t cq, const int8_t *tab, int32_t sp, int32_t sq,
                           __mmask16 cj, int nr, int32_t *o) {
    const __m512i m0f = _mm512_set1_epi8(0x0f), ones = _mm512_set1_epi8(1);
    const __m512i offs = _mm512_set1_epi32(0x30201000);          /* 16 j in byte j of each dword */
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int64_t c = 0; c < cq; c++) {
        const uint8_t *z = blk + c * 256;
        const int8_t *tq = tab + c * 1024;
        for (int k = 0; k < 4; k++) {
            _mm_prefetch((const char *)(z + PFLUT + 64 * k), _MM_HINT_T1);
            _mm_prefetch((const char *)(z + 2 * PFLUT + 64 * k), _MM_HINT_T1);
        }
        __m512i b0, b1, b2, b3, b4, b5;
#define LUT_IT(i, OP)                                                                               \
        do {                                                                                        \
            const __m512i w_ = _mm512_loadu_si512(z + 64 * (i));                                    \
            const __m512i ih_ = _mm512_ternarylogic_epi32(w_, m0f, offs, 0xEA);   /* (w & 15) | 16j */ \
            const __m512i ix_ = _mm512_ternarylogic_epi32(_mm512_srli_epi16(w_, 4), m0f, offs, 0xEA); \
            const int8_t *t_ = tq + 256 * (i);                                                      \
            __m512i pl_ = _mm512_loadu_si512(t_), ph_ = _mm512_loadu_si512(t_ + 64);                \
            __m512i ql_ = _mm512_loadu_si512(t_ + 128), qh_ = _mm512_loadu_si512(t_ + 192);         \
            /* each table loaded once for its two vpermb (folded, it is loaded twice: 13.5 -> 12.6 cycles) */ \
            __asm__("" : "+v"(pl_), "+v"(ph_), "+v"(ql_), "+v"(qh_));                              \
            b0 = OP(b0, _mm512_permutexvar_epi8(ih_, pl_)); b1 = OP(b1, _mm512_permutexvar_epi8(ih_, ph_)); \
            b2 = OP(b2, _mm512_permutexvar_epi8(ih_, ql_)); b3 = OP(b3, _mm512_permutexvar_epi8(ih_, qh_)); \
            b4 = OP(b4, _mm512_permutexvar_epi8(ix_, pl_));                                         \
            b5 = OP(b5, _mm512_permutexvar_epi8(ix_, ph_));                                         \
            a6 = _mm512_dpbusd_epi32(a6, _mm512_permutexvar_epi8(ix_, ql_), ones);                  \
            a7 = _mm512_dpbusd_epi32(a7, ones, _mm512_permutexvar_epi8(ix_, qh_));                  \
            /* keeps the byte sums in registers: without it GCC hoists loads and spills */         \
            __asm__("" : "+v"(b0), "+v"(b1), "+v"(b2), "+v"(b3), "+v"(b4), "+v"(b5), "+v"(a6), "+v"(a7)); \
        } while (0)
#define LUT_FIRST(a, b) (b)
#define LUT_ADD(a, b) _mm512_add_epi8(a, b)
        LUT_IT(0, LUT_FIRST); LUT_IT(1, LUT_ADD); LUT_IT(2, LUT_ADD); LUT_IT(3, LUT_ADD);
        /* lo parts are u8 (vpdpbusd's first operand), hi parts s8 (its second) */
        a0 = _mm512_dpbusd_epi32(a0, b0, ones); a1 = _mm512_dpbusd_epi32(a1, ones, b1);
        a2 = _mm512_dpbusd_epi32(a2, b2, ones); a3 = _mm512_dpbusd_epi32(a3, ones, b3);
        a4 = _mm512_dpbusd_epi32(a4, b4, ones); a5 = _mm512_dpbusd_epi32(a5, ones, b5);
        __asm__("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));
#undef LUT_ADD
#undef LUT_FIRST
#undef LUT_IT
    }
    /* Σ = 16 hi + lo; then Σap = Σp - Σhp - Σxp, Σbp = Σxp - Σhp (likewise q), q's negated under cj, and
     * the four sums of each row interleaved by two rounds of vpermt2d (a scalar tail with a division per
     * row for the matrix's flag cost 150 cycles a block, 10% at m = 2048) */
    const __m512i hp = _mm512_add_epi32(_mm512_slli_epi32(a1, 4), a0);
    const __m512i hq = _mm512_add_epi32(_mm512_slli_epi32(a3, 4), a2);
    const __m512i xp = _mm512_add_epi32(_mm512_slli_epi32(a5, 4), a4);
    const __m512i xq = _mm512_add_epi32(_mm512_slli_epi32(a7, 4), a6);
    const __m512i ap = _mm512_sub_epi32(_mm512_sub_epi32(_mm512_set1_epi32(sp), hp), xp);
    const __m512i bp = _mm512_sub_epi32(xp, hp);
    __m512i aq = _mm512_sub_epi32(_mm512_sub_epi32(_mm512_set1_epi32(sq), hq), xq);
    __m512i bq = _mm512_sub_epi32(xq, hq);
    aq = _mm512_mask_sub_epi32(aq, cj, _mm512_setzero_si512(), aq);
    bq = _mm512_mask_sub_epi32(bq, cj, _mm512_setzero_si512(), bq);
    /* pairs: (ap d, aq d) for d = 0..7 and 8..15, likewise (bp, bq); then rows 4 k .. 4 k + 3 whole */
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __m512i a_lo = _mm512_permutex2var_epi32(ap, lo, aq), a_hi = _mm512_permutex2var_epi32(ap, hi, aq);
    const __m512i b_lo = _mm512_permutex2var_epi32(bp, lo, bq), b_hi = _mm512_permutex2var_epi32(bp, hi, bq);
    const __m512i q0 = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0), q1 = _mm512_add_epi64(q0, _mm512_set1_epi64(4));
    const __m512i v[4] = {_mm512_permutex2var_epi64(a_lo, q0, b_lo), _mm512_permutex2var_epi64(a_lo, q1, b_lo),
                          _mm512_permutex2var_epi64(a_hi, q0, b_hi), _mm512_permutex2var_epi64(a_hi, q1, b_hi)};
    for (int k = 0; k < 4 && 4 * k < nr; k++) {
        const int left = nr - 4 * k;                        /* rows left from 4 k: a partial last block */
        const __mmask16 keep = left >= 4 ? (__mmask16)0xffff : (__mmask16)((1u << (4 * left)) - 1);
        _mm512_mask_storeu_epi32(o + 16 * k, keep, v[k]);
    }
}

static void rows_lut512(const uint8_t *laid, int64_t cq, int64_t b0, int64_t b1, int64_t rows, int64_t n,
                        const int8_t *tabs, int tokens, const int32_t *sp, const int32_t *sq,
                        const int32_t *conj, int32_t *out) {
    /* the matrix of each row is tracked, not divided out */
    int64_t mat = 16 * b0 / n, next = (mat + 1) * n;
    for (int64_t b = b0; b < b1; b++) {
        int nr = rows - 16 * b < 16 ? (int)(rows - 16 * b) : 16;
        __mmask16 cj = 0;
        for (int d = 0; d < nr; d++) {
            if (16 * b + d == next) { mat++; next += n; }
            if (conj[mat]) cj |= (__mmask16)(1u << d);
        }
        for (int t = 0; t < tokens; t++)
            lut16_512(laid + b * cq * 256, cq, tabs + (int64_t)t * cq * 1024, sp[t], sq[t], cj, nr,
                      out + ((int64_t)t * rows + 16 * b) * 4);
    }
}

/* The tables of a call live in a buffer kept by the calling thread for the next call: a fresh one of
 * 128-344 KiB a call (mmap'ed, page-faulted) cost 8-26 us a call, a few % of a whole-model pass. */
static __thread int8_t *lut_buf;
static __thread size_t lut_cap;

/* Sums of codes re-laid by fairy_lut_layout (mats x n rows of ceil(m/4) code bytes); as fairy_sums_cpu.
 * Returns 0, or -1 when out of memory. */
FAIRY_API int fairy_sums_lut512(const uint8_t *laid, int mats, int64_t n, int64_t m, const int8_t *p,
                                const int8_t *q, int tokens, const int32_t *conj, int32_t *out, int threads) {
    int64_t rb = (m + 3) / 4, cq = (rb + 15) / 16, rows = (int64_t)mats * n, blocks = (rows + 15) / 16;
    size_t need = (size_t)(tokens * cq * 1024);
    if (need > lut_cap) {
        free(lut_buf);
        lut_cap = 0;
        lut_buf = aligned_alloc(64, (need + 63) / 64 * 64);
        if (!lut_buf) return -1;
        lut_cap = need;
    }
    int8_t *tabs = lut_buf;
    int32_t *sp = calloc((size_t)tokens, sizeof(int32_t)), *sq = calloc((size_t)tokens, sizeof(int32_t));
    if (!sp || !sq) { free(sp); free(sq); return -1; }
    token_sums(p, q, m, tokens, sp, sq);
    if (threads < 1) threads = fairy_cpu_threads();
    #pragma omp parallel num_threads(threads)
    {
        /* the tables, split by chunks among the threads, then the row blocks */
        int64_t c0, c1, b0, b1;
        thread_share(cq, &c0, &c1);
        for (int t = 0; t < tokens && c0 < c1; t++)
            lut_tables(p + (int64_t)t * m + 64 * c0, q + (int64_t)t * m + 64 * c0, m - 64 * c0, c1 - c0,
                       tabs + (int64_t)t * cq * 1024 + c0 * 1024);
        #pragma omp barrier
        thread_share(blocks, &b0, &b1);
        if (b0 < b1) rows_lut512(laid, cq, b0, b1, rows, n, tabs, tokens, sp, sq, conj, out);
    }
    free(sp); free(sq);
    return 0;
}

/* ---------------------------------------------------------------- entry points */
FAIRY_API int fairy_cpu_features(void) {
    __builtin_cpu_init();
    int f = 0;
    if (__builtin_cpu_supports("avx2")) f |= 1;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni")) f |= 2;
    if ((f & 2) && __builtin_cpu_supports("avx512vbmi")) f |= 4;
    return f;
}

FAIRY_API int fairy_cpu_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* variant: 0 scalar, 1 avx2, 2 avx512, 3 table lookup. Returns 0, or -1 when out of memory. */
FAIRY_API int fairy_sums_cpu(const uint8_t *codes, int mats, int64_t n, int64_t m, const int8_t *p,
                             const int8_t *q, int tokens, const int32_t *conj, int32_t *out, int variant,
                             int threads) {
    int64_t row_bytes = (m + 3) / 4, rows = (int64_t)mats * n;
    int V = variant == 2 ? 64 : 32;
    int64_t mpad = ((row_bytes + V - 1) / V) * V * 4;
    int8_t *pp = NULL, *qq = NULL;
    int16_t *tabs = NULL;
    int32_t *sp = calloc((size_t)tokens, sizeof(int32_t)), *sq = calloc((size_t)tokens, sizeof(int32_t));
    if (!sp || !sq) { free(sp); free(sq); return -1; }
    if (variant == 1 || variant == 2) {
        pp = aligned_alloc(64, (size_t)(mpad * tokens));
        qq = aligned_alloc(64, (size_t)(mpad * tokens));
        if (!pp || !qq) { free(pp); free(qq); free(sp); free(sq); return -1; }
        for (int t = 0; t < tokens; t++) {
            permute(p + (int64_t)t * m, m, mpad, V, pp + (int64_t)t * mpad);
            permute(q + (int64_t)t * m, m, mpad, V, qq + (int64_t)t * mpad);
        }
        token_sums(p, q, m, tokens, sp, sq);
    } else if (variant == 3) {
        tabs = malloc((size_t)tokens * row_bytes * 256 * 4 * sizeof(int16_t));
        if (!tabs) { free(sp); free(sq); return -1; }
        for (int t = 0; t < tokens; t++)
            build_tables(p + (int64_t)t * m, q + (int64_t)t * m, m, row_bytes,
                         tabs + (int64_t)t * row_bytes * 256 * 4);
    }
    if (threads < 1) threads = fairy_cpu_threads();
    /* rows split into even chunks, one per thread */
    #pragma omp parallel num_threads(threads)
    {
        int64_t r0, r1;
        thread_share(rows, &r0, &r1);
        if (r0 < r1) {
            switch (variant) {
                case 0: rows_scalar(codes, row_bytes, m, r0, r1, n, mats, p, q, tokens, conj, out); break;
                case 1: rows_avx2(codes, row_bytes, mpad, r0, r1, n, mats, pp, qq, tokens, sp, sq, conj, out); break;
                case 2: rows_avx512(codes, row_bytes, mpad, r0, r1, n, mats, pp, qq, tokens, sp, sq, conj, out); break;
                default: rows_lut(codes, row_bytes, r0, r1, n, mats, tabs, tokens, conj, out); break;
            }
        }
    }
    free(pp); free(qq); free(tabs); free(sp); free(sq);
    return 0;
}

/* A plain read of a buffer with all threads (the bandwidth the kernels are measured against): returns the
 * XOR of all its bytes, so that no byte can be skipped. */
T512 static uint64_t read512(const uint8_t *buf, int64_t bytes) {
    __m512i acc = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        __m512i a = _mm512_loadu_si512(buf + i), b = _mm512_loadu_si512(buf + i + 64);
        __m512i c = _mm512_loadu_si512(buf + i + 128), d = _mm512_loadu_si512(buf + i + 192);
        acc = _mm512_xor_si512(acc, _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d)));
    }
    uint64_t x = 0;
    uint64_t lanes[8];
    _mm512_storeu_si512(lanes, acc);
    for (int l = 0; l < 8; l++) x ^= lanes[l];
    x ^= x >> 32; x ^= x >> 16; x ^= x >> 8;
    x &= 0xff;
    for (; i < bytes; i++) x ^= buf[i];
    return x;
}

T256 static uint64_t read256(const uint8_t *buf, int64_t bytes) {
    __m256i acc = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(buf + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(buf + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(buf + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(buf + i + 96));
        acc = _mm256_xor_si256(acc, _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d)));
    }
    uint64_t x = 0;
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, acc);
    for (int l = 0; l < 4; l++) x ^= lanes[l];
    x ^= x >> 32; x ^= x >> 16; x ^= x >> 8;
    x &= 0xff;
    for (; i < bytes; i++) x ^= buf[i];
    return x;
}

FAIRY_API uint64_t fairy_read(const uint8_t *buf, int64_t bytes, int threads) {
    uint64_t x = 0;
    if (threads < 1) threads = fairy_cpu_threads();
    int features = fairy_cpu_features(), avx512 = (features & 2) != 0, avx2 = (features & 1) != 0;
    #pragma omp parallel num_threads(threads) reduction(^:x)
    {
        int nt = 1, id = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads(); id = omp_get_thread_num();
#endif
        int64_t per = ((bytes + nt - 1) / nt + 255) / 256 * 256;
        int64_t b0 = id * per, b1 = b0 + per < bytes ? b0 + per : bytes;
        if (b0 < b1) {
            if (avx512) x ^= read512(buf + b0, b1 - b0);
            else if (avx2) x ^= read256(buf + b0, b1 - b0);
            else for (int64_t i = b0; i < b1; i++) x ^= buf[i];
        }
    }
    return x;
}
