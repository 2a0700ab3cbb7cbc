// Tensor-core kernel of the packed widely-linear layer on bit planes: exact integer sums, int8 activations.
//
// Built at run time by NVRTC (fairyhw/kernels/nvrtc.py), no CUDA toolkit needed, and compiled for the
// GPU it runs on. Inputs:
//   codes  int32 [rows][mw]: the M code matrices of a layer stacked (rows = M*n, stream order U0, W0, U1,
//          ...), 16 codes a word, code 4i+J of a word at bits 8i+2J (the fairyhw.model.pack bit order); mw % 4 == 0.
//   act    int32 [B][2][4][mwp]: for token b, p (0) or q (1), slot J and word w, the four bytes
//          x[16w + 4i + J], i = 0..3 (mwp = 16 * ceil(mw / 16), zero padded).
//   sums   int32 [B][2]: sum p and sum q of each token.
//   out    int32 [B][rows][4]: sum a p, sum a q, sum b p, sum b q; odd matrices (W) on conj(x).
//
// With h the high bit of a code and x = h ^ l: a = 1 - h - x and b = x - h, so only the 0/1 sums
// H = sum h p and X = sum x p are needed. Masking a code word with 0x02020202 << 2J keeps h of codes
// 4i + J, i = 0..3, as the bytes 0 or 2^(2J+1): that register is an A fragment of an int8 MMA as it stands
// (one LOP3; no shifts, no decode). The same for x with (w ^ w << 1) & 0x02020202 << 2J.
// The four slots J go to different columns: the B operand of the MMA for slot J holds the slot-J
// activations in columns 2J (p) and 2J+1 (q), so column 2J+c of slot J's result is 2^(2J+1) H (or
// 2^(2J+1) X), exactly divisible, and one shift per column undoes the scale. SEP (one or two tokens): each
// slot has its own accumulators and the B operands go in as loaded (no selects; the other columns of
// slot J's accumulators are discarded). Otherwise one accumulator pair, the B operands zeroed outside
// the slot's columns (fewer registers for up to 8 tokens).
//
// m16n8k32 fragments (PTX ISA), lane = 4g + t: A a0 = row g, k 4t..4t+3; a1 = row g+8, same k;
// a2 = row g, k 16+4t..; a3 = row g+8, k 16+4t..; B b0 = k 4t.., column g; b1 = k 16+4t.., column g;
// C c0 = (g, 2t), c1 = (g, 2t+1), c2 = (g+8, 2t), c3 = (g+8, 2t+1).
// A chunk is 16 words of 16 rows; thread t holds words 4t..4t+3 of rows g and g+8 (one 16-byte load
// each). MMA step s of a chunk puts word 4t+2s at k 4t.. and word 4t+2s+1 at k 16+4t..; thread (g, t)
// takes the B bytes of the same words from the slot J = g/2 of p (g even) or q (g odd).
// A block of KSPLIT warps shares one 16-row tile at a time, the warps taking UNROLL chunks (an item) in
// turn; the partial sums meet in shared memory. The grid holds a few blocks per SM, each walking tiles
// blockIdx.x, + gridDim.x, ...; with PRE each warp loads its next item's codes and activations while it
// computes the current one (without, each item is loaded where it is used: fewer registers, more warps,
// and the better choice where one item per warp covers a tile). FULL (whole tiles, no padding words,
// whole items) drops every bounds check. MINB > 0 asks for registers that fit MINB blocks on an SM.
// Choices of KSPLIT, UNROLL, SEP, PRE, MINB and blocks per SM come from sweeps on an H100
// (fairyhw.kernels.gpu.kernel.mma_config).

// Compiled as kernel.mma_source(): the launcher's constants (#define lines) come first.
#ifndef FAIRY_ROW_MATRIX_SHIFT
#error "FAIRY_ROW_MATRIX_SHIFT (kernel.ROW_MATRIX_SHIFT) is defined by the launcher: compile kernel.mma_source()"
#endif

typedef unsigned int u32;

__device__ __forceinline__ void mma_u8s8(int (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm(
        "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// (a ^ b) & c in one instruction (the compiler shares a ^ b between the four masks instead)
__device__ __forceinline__ u32 xor_and(u32 a, u32 b, u32 c) {
    u32 d;
    asm("lop3.b32 %0, %1, %2, %3, 0x28;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

// codes are read once: keep them out of L1 and ask L2 for the whole 256-byte line
__device__ __forceinline__ uint4 load_stream(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

// Thread (g, t)'s codes of one item: UNROLL chunks c0, c0 + KSPLIT, ... of rows g and g + 8 of a tile,
// words 4t..4t+3 of each chunk (zero past the rows and the row's end unless FULL).
template <int UNROLL, int KSPLIT, bool FULL>
__device__ __forceinline__ void load_code_item(const uint4 *__restrict__ codes, uint4 (&dg)[UNROLL],
                                               uint4 (&dg8)[UNROLL], int tile, int c0, int g, int t, int q4,
                                               int chunks, int rows) {
    const uint4 zero = make_uint4(0, 0, 0, 0);
    const int rg = tile * 16 + g;
    const uint4 *pg = codes + (size_t)rg * q4, *pg8 = pg + (size_t)8 * q4;
#pragma unroll
    for (int u = 0; u < UNROLL; u++) {
        const int c = c0 + u * KSPLIT, idx = 4 * c + t;
        if (FULL) {                                         // whole tiles and items: no checks
            dg[u] = load_stream(pg + idx);
            dg8[u] = load_stream(pg8 + idx);
        } else {
            const bool in = c < chunks && idx < q4;
            dg[u] = (in && rg < rows) ? load_stream(pg + idx) : zero;
            dg8[u] = (in && rg + 8 < rows) ? load_stream(pg8 + idx) : zero;
        }
    }
}

// The warps' partial sums of one tile (Hp, Hq, Xp, Xq of each token and row, in shared memory) added up
// and turned into the four sums: Σap = Σp - H_p - X_p, Σbp = X_p - H_p (likewise q), q negated for W.
template <int B, int KSPLIT>
__device__ __forceinline__ void finish_tile(const int4 (&red)[KSPLIT][B][16], const int *__restrict__ sums,
                                            int4 *__restrict__ out, int tile, int rows, int n) {
    for (int i = threadIdx.x; i < B * 16; i += KSPLIT * 32) {
        const int b = i >> 4, rr = i & 15, r = tile * 16 + rr;
        if (r >= rows) continue;
        int4 s = red[0][b][rr];
#pragma unroll
        for (int w = 1; w < KSPLIT; w++) {
            const int4 o = red[w][b][rr];
            s.x += o.x; s.y += o.y; s.z += o.z; s.w += o.w;
        }
        const int sp = sums[2 * b], sq = sums[2 * b + 1];
        int ap = sp - s.x - s.z, aq = sq - s.y - s.w, bp = s.z - s.x, bq = s.w - s.y;
        if ((r / n) & 1) { aq = -aq; bq = -bq; }                      // W: conj(x)
        out[(size_t)b * rows + r] = make_int4(ap, aq, bp, bq);
    }
}

// d = s and d = 0 for registers held in (nested) arrays, element by element (unrolled: they stay registers)
__device__ __forceinline__ void copy_regs(uint4 &d, const uint4 &s) { d = s; }
template <class T, int N>
__device__ __forceinline__ void copy_regs(T (&d)[N], const T (&s)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) copy_regs(d[i], s[i]);
}
__device__ __forceinline__ void zero_regs(int &d) { d = 0; }
template <class T, int N>
__device__ __forceinline__ void zero_regs(T (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) zero_regs(d[i]);
}

// The walk of both kernels. A block walks tiles blockIdx.x, + gridDim.x, ... (a grid of a few blocks per
// SM streams the whole layer); in each tile warp w takes the items (UNROLL chunks) w, w + STEP, ... With
// PRE each warp loads its next item (this tile's next one, or its first of the next tile) into ng, ng8, na
// while it computes the current one in wg, wg8, av; without, each item is loaded where it is used. The
// codes do not depend on the previous launch: with programmatic dependent launch (PDL) the first loads are
// in flight while it finishes; the activations are read only after it has completed. Each tile starts
// with the accumulators acch, accx zeroed. The kernel gives load_act(da, c0) (an item's activations),
// compute() (the MMAs of the item in wg, wg8, av into acch, accx) and finish(tile, parity) (the warps'
// sums of a tile; parity alternates the shared-memory halves).
template <int UNROLL, int KSPLIT, bool FULL, bool PRE, class A, class C, class LoadAct, class Compute,
          class Finish>
__device__ __forceinline__ void walk_tiles(const uint4 *__restrict__ codes, int g, int t, int q4, int rows,
                                           int warp, int chunks, int tiles, uint4 (&wg)[UNROLL],
                                           uint4 (&wg8)[UNROLL], uint4 (&ng)[UNROLL], uint4 (&ng8)[UNROLL],
                                           A &av, A &na, C &acch, C &accx, LoadAct load_act, Compute compute,
                                           Finish finish) {
    constexpr int STEP = KSPLIT * UNROLL;                   // chunks between a warp's successive items
    const int items = warp < chunks ? (chunks - warp + STEP - 1) / STEP : 0;   // a warp's items per tile
    auto load_codes = [&](uint4 (&dg)[UNROLL], uint4 (&dg8)[UNROLL], int tile, int c0) {
        load_code_item<UNROLL, KSPLIT, FULL>(codes, dg, dg8, tile, c0, g, t, q4, chunks, rows);
    };
    int tile = blockIdx.x;
    if (items > 0 && tile < tiles) load_codes(wg, wg8, tile, warp);
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;\n");
#endif
    if (items > 0 && tile < tiles) load_act(av, warp);
    for (int parity = 0; tile < tiles; tile += gridDim.x, parity ^= 1) {
        zero_regs(acch);
        zero_regs(accx);
        for (int it = 0; it < items; it++) {
            const int c0 = warp + it * STEP;
            if (!PRE && (it > 0 || tile != (int)blockIdx.x)) {
                load_codes(wg, wg8, tile, c0);              // no prefetch: this item's own loads
                load_act(av, c0);
            }
            int nt = tile, nc = c0 + STEP;                  // the next item: this tile's, or the next tile's
            if (nc >= chunks) { nt = tile + gridDim.x; nc = warp; }
            if (PRE && nt < tiles) {                        // in flight while this item computes
                load_codes(ng, ng8, nt, nc);
                load_act(na, nc);
            }
            compute();
            if (PRE) {          // the next item becomes the current one (unconditionally: without one, the
                copy_regs(wg, ng);                          // walk ends here)
                copy_regs(wg8, ng8);
                copy_regs(av, na);
            }
        }
        finish(tile, parity);
    }
}

template <int B, int KSPLIT, int UNROLL, bool SEP, bool FULL, bool PRE = true, int MINB = 0>
__global__ void __launch_bounds__(KSPLIT * 32, MINB)
fairy_mma(const uint4 *__restrict__ codes, const uint4 *__restrict__ act, const int *__restrict__ sums,
          int4 *__restrict__ out, int rows, int n, int mw, int mwp) {
    __shared__ int4 red[2][KSPLIT][B][16];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int q4 = mw >> 2;                 // 16-byte vectors in a row
    const int chunks = mwp >> 4, tiles = (rows + 15) >> 4;
    const int myj = g >> 1;
    const uint4 *actj = act + (size_t)((g & 1) * 4 + myj) * (mwp >> 2);
    const size_t act_token = (size_t)8 * (mwp >> 2);
    constexpr int NJ = SEP ? 4 : 1;

    const uint4 zero = make_uint4(0, 0, 0, 0);
    uint4 wg[UNROLL], wg8[UNROLL], ng[UNROLL], ng8[UNROLL], av[UNROLL][B], na[UNROLL][B];
#pragma unroll
    for (int u = 0; u < UNROLL; u++) {
        ng[u] = ng8[u] = zero;
#pragma unroll
        for (int b = 0; b < B; b++) na[u][b] = zero;
    }
    auto load_act = [&](uint4 (&da)[UNROLL][B], int c0) {
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int c = c0 + u * KSPLIT, idx = 4 * c + t;
#pragma unroll
            for (int b = 0; b < B; b++) da[u][b] = FULL || c < chunks ? actj[b * act_token + idx] : zero;
        }
    };
    int acch[B][NJ][4], accx[B][NJ][4];
    auto compute = [&]() {
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
#pragma unroll
            for (int s = 0; s < 2; s++) {
                const u32 a0 = s ? wg[u].z : wg[u].x, a2 = s ? wg[u].w : wg[u].y;
                const u32 a1 = s ? wg8[u].z : wg8[u].x, a3 = s ? wg8[u].w : wg8[u].y;
                // x = h ^ l at bit 2J+1 of w ^ (w << 1): the same mask and scale as h; the left shift is
                // a multiply (IMAD.SHL) off the integer ALU pipe, the xor and the mask one LOP3
                const u32 s0 = a0 << 1, s1 = a1 << 1, s2 = a2 << 1, s3 = a3 << 1;
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const u32 mh = 0x02020202u << (2 * j);
#pragma unroll
                    for (int b = 0; b < B; b++) {
                        const u32 v0 = s ? av[u][b].z : av[u][b].x, v1 = s ? av[u][b].w : av[u][b].y;
                        const u32 b0 = SEP || myj == j ? v0 : 0u, b1 = SEP || myj == j ? v1 : 0u;
                        mma_u8s8(acch[b][SEP ? j : 0], a0 & mh, a1 & mh, a2 & mh, a3 & mh, b0, b1);
                        mma_u8s8(accx[b][SEP ? j : 0], xor_and(a0, s0, mh), xor_and(a1, s1, mh),
                                 xor_and(a2, s2, mh), xor_and(a3, s3, mh), b0, b1);
                    }
                }
            }
        }
    };
    auto finish = [&](int tile, int parity) {
        // column 2t+c holds slot J = t: undo its scale, then add the four slots (lanes t = 0..3)
#pragma unroll
        for (int b = 0; b < B; b++) {
            int v[8];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int h = acch[b][0][i], x = accx[b][0][i];
#pragma unroll
                for (int j = 1; j < NJ; j++)
                    if (t == j) { h = acch[b][j][i]; x = accx[b][j][i]; }
                v[i] = h >> (2 * t + 1);
                v[4 + i] = x >> (2 * t + 1);
            }
#pragma unroll
            for (int i = 0; i < 8; i++) {
                v[i] += __shfl_xor_sync(0xffffffffu, v[i], 1);
                v[i] += __shfl_xor_sync(0xffffffffu, v[i], 2);
            }
            if (t == 0) {
                red[parity][warp][b][g] = make_int4(v[0], v[1], v[4], v[5]);       // Hp, Hq, Xp, Xq, row g
                red[parity][warp][b][g + 8] = make_int4(v[2], v[3], v[6], v[7]);   // of row g + 8
            }
        }
        __syncthreads();            // red[parity] is written again two tiles on, after the next barrier
        finish_tile<B, KSPLIT>(red[parity], sums, out, tile, rows, n);
    };
    walk_tiles<UNROLL, KSPLIT, FULL, PRE>(codes, g, t, q4, rows, warp, chunks, tiles, wg, wg8, ng, ng8, av, na,
                                          acch, accx, load_act, compute, finish);
}

// ------------------------------------------------------------------------------------------------------
// Tokens in the columns (two tokens and more). The kernel above gives the B operand's eight columns to
// the four slots J x (p, q) of one token, so every token costs its own MMAs (and without SEP 3/4 of each
// MMA's columns are zero). Here column g of the B operand is token 4G + g/2 of column group G, p (g even)
// or q (g odd), and the slots go to accumulators instead: slot J's A fragment keeps its bytes at
// 2^(2J+1) (the same single LOP3 per register as above) and meets slot J's activations of four tokens
// in one MMA. Per chunk step: 4 slots x 2 planes x ceil(B/4) MMAs, against 4 x 2 x B above, with every
// column live when B is a multiple of 4. SETS: accumulator sets per plane and column group. 4: one per
// slot, no shifts; 2: slots 2 and 3 shifted right by 4 onto the bits of slots 0 and 1 (one shift per
// register), scales 2 and 8; 1: each slot shifted onto slot 0 (three shifts), one scale, a quarter of
// the accumulator registers. Thread (g, t) ends with token 4G + t's H and X of rows g and g + 8 in its
// own registers (c0, c1 = row g, p and q; c2, c3 = row g + 8): no shuffles. Walk (walk_tiles), loads,
// prefetch and the shared-memory sum of the warps as in fairy_mma.
template <int B, int KSPLIT, int UNROLL, int SETS, bool FULL, bool PRE = false, int MINB = 0>
__global__ void __launch_bounds__(KSPLIT * 32, MINB)
fairy_mma_tok(const uint4 *__restrict__ codes, const uint4 *__restrict__ act, const int *__restrict__ sums,
              int4 *__restrict__ out, int rows, int n, int mw, int mwp) {
    static_assert(SETS == 1 || SETS == 2 || SETS == 4, "SETS is 1, 2 or 4");
    constexpr int NG = (B + 3) / 4;         // column groups of four tokens
    __shared__ int4 red[2][KSPLIT][B][16];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int q4 = mw >> 2;
    const int chunks = mwp >> 4, tiles = (rows + 15) >> 4;
    const size_t plane = (size_t)(mwp >> 2);                       // 16-byte vectors per (token, p/q, slot)
    const uint4 *actg = act + (size_t)((g >> 1) * 2 + (g & 1)) * 4 * plane;   // token g/2, p or q

    const uint4 zero = make_uint4(0, 0, 0, 0);
    uint4 wg[UNROLL], wg8[UNROLL], ng[UNROLL], ng8[UNROLL], av[UNROLL][NG][4], na[UNROLL][NG][4];
#pragma unroll
    for (int u = 0; u < UNROLL; u++) {
        ng[u] = ng8[u] = zero;
#pragma unroll
        for (int G = 0; G < NG; G++)
#pragma unroll
            for (int j = 0; j < 4; j++) na[u][G][j] = zero;
    }
    auto load_act = [&](uint4 (&da)[UNROLL][NG][4], int c0) {
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int c = c0 + u * KSPLIT, idx = 4 * c + t;
#pragma unroll
            for (int G = 0; G < NG; G++) {
                const bool live = 4 * G + 3 < B || 4 * G + (g >> 1) < B;   // a token of the batch
#pragma unroll
                for (int j = 0; j < 4; j++)
                    da[u][G][j] = live && (FULL || c < chunks) ? actg[(size_t)G * 32 * plane + j * plane + idx]
                                                               : zero;
            }
        }
    };
    int acch[NG][SETS][4], accx[NG][SETS][4];
    auto compute = [&]() {
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
#pragma unroll
            for (int s = 0; s < 2; s++) {
                const u32 w[4] = {s ? wg[u].z : wg[u].x, s ? wg8[u].z : wg8[u].x,
                                  s ? wg[u].w : wg[u].y, s ? wg8[u].w : wg8[u].y};   // a0..a3
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    // slot j's bits moved to where its set keeps them, then one mask (and xor) each
                    const int shift = SETS == 4 ? 0 : SETS == 2 ? (j & 2) * 2 : 2 * j;
                    const u32 mh = 0x02020202u << (2 * (SETS == 4 ? j : SETS == 2 ? (j & 1) : 0));
                    const int k = SETS == 4 ? j : SETS == 2 ? (j & 1) : 0;
                    u32 h[4], x[4];
#pragma unroll
                    for (int r = 0; r < 4; r++) {
                        const u32 a = w[r] >> shift;
                        h[r] = a & mh;
                        x[r] = xor_and(a, a << 1, mh);
                    }
#pragma unroll
                    for (int G = 0; G < NG; G++) {
                        const u32 b0 = s ? av[u][G][j].z : av[u][G][j].x;
                        const u32 b1 = s ? av[u][G][j].w : av[u][G][j].y;
                        mma_u8s8(acch[G][k], h[0], h[1], h[2], h[3], b0, b1);
                        mma_u8s8(accx[G][k], x[0], x[1], x[2], x[3], b0, b1);
                    }
                }
            }
        }
    };
    auto finish = [&](int tile, int parity) {
        // set k's sums carry 2^(2k+1) (SETS 4 and 2) or 2 (SETS 1): undo, add the sets
#pragma unroll
        for (int G = 0; G < NG; G++) {
            const int b = 4 * G + t;
            int hs[4] = {0, 0, 0, 0}, xs[4] = {0, 0, 0, 0};
#pragma unroll
            for (int k = 0; k < SETS; k++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int sh = SETS == 1 ? 1 : 2 * k + 1;
                    hs[i] += acch[G][k][i] >> sh;
                    xs[i] += accx[G][k][i] >> sh;
                }
            if (b < B) {
                red[parity][warp][b][g] = make_int4(hs[0], hs[1], xs[0], xs[1]);       // Hp, Hq, Xp, Xq
                red[parity][warp][b][g + 8] = make_int4(hs[2], hs[3], xs[2], xs[3]);
            }
        }
        __syncthreads();
        finish_tile<B, KSPLIT>(red[parity], sums, out, tile, rows, n);
    };
    walk_tiles<UNROLL, KSPLIT, FULL, PRE>(codes, g, t, q4, rows, warp, chunks, tiles, wg, wg8, ng, ng8, av, na,
                                          acch, accx, load_act, compute, finish);
}

// ------------------------------------------------------------------------------------------------------
// Plain read of a buffer (the bandwidth baseline of the GPU benchmark): every 16-byte vector is loaded
// once, with the same streaming load as the layer kernel, and XORed into one word per warp. With
// programmatic dependent launch, as the layer kernel: loads start while the previous launch ends.
template <int UNROLL>
__global__ void __launch_bounds__(256) read_xor(const uint4 *__restrict__ p, long long n16, u32 *out) {
    u32 acc = 0;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;\n");
#endif
    for (; i + (UNROLL - 1) * stride < n16; i += UNROLL * stride) {
        uint4 v[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) v[u] = load_stream(p + i + u * stride);
#pragma unroll
        for (int u = 0; u < UNROLL; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    for (; i < n16; i += stride) {
        const uint4 v = load_stream(p + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
#pragma unroll
    for (int o = 16; o; o >>= 1) acc ^= __shfl_xor_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) out[blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)] = acc;
}

// ------------------------------------------------------------------------------------------------------
// One token, codes streamed into shared memory by bulk copies (Hopper's cp.async.bulk; sm_90 and newer).
// The kernels above load codes into registers a few kilobytes a block ahead, so between two launches the
// memory system drains: a launch's ~10 MB take ~3 us at the H200's peak, and the gap costs a large share
// of that. Here the grid is one block per SM, each block owning a contiguous run of 16-row tiles; each of
// its W warps owns D stages of shared memory (one tile each: 16 rows x mw words, a contiguous stretch of
// the code matrix, so one bulk copy fills it) and walks the block's tiles w, w + W, ...: wait for the
// stage's mbarrier, compute the whole tile (all its chunks: no sum across warps), refill the stage with
// its tile D on, write the tile's rows. Before griddepcontrol.wait (PDL) every warp has issued its first
// D copies: they fill while the previous launch finishes. A block takes under half an SM's shared memory
// (the host sizes W x D), so the next launch's block sits beside this one and streams in its turn.
// The activations (one token's planes, at most a few kilobytes) are copied into shared memory once, after
// the wait. Codes past a row's end (the last chunk of a row of mw % 16 != 0 words) are read from whatever
// the buffer holds there and meet activations that are zero (activation_planes pads them), so they add 0.
// Registers are capped for two blocks an SM (__launch_bounds__), as the shared memory is.
// READ (the benchmark's breakdown): the same copies and waits, no MMAs; one word of each tile is XORed
// into out, so that the copies cannot be skipped.

__device__ __forceinline__ u32 smem_addr(const void *p) { return (u32)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void bar_init(unsigned long long *bar) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(smem_addr(bar)));
}

// lane 0: expect `bytes` on `bar` and copy them from global `src` to shared `dst` (16-byte aligned sizes)
__device__ __forceinline__ void bulk_copy(void *dst, const void *src, u32 bytes, unsigned long long *bar) {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes)
                 : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
                 ::"r"(smem_addr(dst)), "l"(src), "r"(bytes), "r"(smem_addr(bar)) : "memory");
}

// bulk_copy with an L2 cache policy (`pol`, from createpolicy): the persistent kernel copies the codes,
// read once a step, as evict-first, so that they do not push the layers' activations and results (read
// by every block right after they are written) out of L2. Same run on an H100, whole step: 0.737 ms
// against 0.758 without the policy.
__device__ __forceinline__ void bulk_copy_ef(void *dst, const void *src, u32 bytes, unsigned long long *bar,
                                             unsigned long long pol) {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes)
                 : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;\n"
                 ::"r"(smem_addr(dst)), "l"(src), "r"(bytes), "r"(smem_addr(bar)), "l"(pol) : "memory");
}
// Ask `bytes` (a multiple of 16) at `src` (16-byte aligned) into L2, no data back to the SM.
__device__ __forceinline__ void prefetch_l2(const void *src, u32 bytes) {
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(src), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bar_wait(unsigned long long *bar, u32 parity) {
    asm volatile(
        "{\n"
        ".reg .pred done;\n"
        "WAIT_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_%=;\n"
        "}\n" ::"r"(smem_addr(bar)), "r"(parity) : "memory");
}

__device__ __forceinline__ void mma_b1(int (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm("mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// B1 (below): the four binary MMAs of one chunk of a 16-row tile (hv, xv: the lane's A fragments of the
// h and x planes, as a whole tile's fragment layout holds them, see kernel._tile_chunks; bp, bq: its
// words of the chunk's p and q bit planes)
__device__ __forceinline__ void b1_chunk_frag(int (&hp)[4], int (&hq)[4], int (&xp)[4], int (&xq)[4],
                                              const uint4 &hv, const uint4 &xv, uint2 bp, uint2 bq) {
    mma_b1(hp, hv.x, hv.y, hv.z, hv.w, bp.x, bp.y);
    mma_b1(hq, hv.x, hv.y, hv.z, hv.w, bq.x, bq.y);
    mma_b1(xp, xv.x, xv.y, xv.z, xv.w, bp.x, bp.y);
    mma_b1(xq, xv.x, xv.y, xv.z, xv.w, bq.x, bq.y);
}

// B1, a short tile's rows (wg, wg8: rows g and g + 8 of lane (g, t)): the fragments put together first
__device__ __forceinline__ void b1_chunk(int (&hp)[4], int (&hq)[4], int (&xp)[4], int (&xq)[4],
                                         const uint4 &wg, const uint4 &wg8, uint2 bp, uint2 bq) {
    b1_chunk_frag(hp, hq, xp, xq, make_uint4(wg.x, wg8.x, wg.y, wg8.y), make_uint4(wg.z, wg8.z, wg.w, wg8.w),
                  bp, bq);
}

// B1: a lane's share of (Hp, Hq, Hp', Hq', Xp, Xq, Xp', Xq') (' row g + 8) from the MMA counts: columns
// 2t, 2t + 1 are bit planes 2t, 2t + 1 (plane 7 the sign, weight -128)
__device__ __forceinline__ void b1_columns(int (&v)[8], const int (&hp)[4], const int (&hq)[4],
                                           const int (&xp)[4], const int (&xq)[4], int t) {
    const int w0 = 1 << (2 * t), w1 = t == 3 ? -128 : 2 << (2 * t);
    v[0] = w0 * hp[0] + w1 * hp[1]; v[1] = w0 * hq[0] + w1 * hq[1];
    v[2] = w0 * hp[2] + w1 * hp[3]; v[3] = w0 * hq[2] + w1 * hq[3];
    v[4] = w0 * xp[0] + w1 * xp[1]; v[5] = w0 * xq[0] + w1 * xq[1];
    v[6] = w0 * xp[2] + w1 * xp[3]; v[7] = w0 * xq[2] + w1 * xq[3];
}

// B1: a lane's share of one tile's sums, the tile's codes at `st` (nr rows; a whole tile in the
// fragment layout, 1,024 bytes a chunk, lane (g, t)'s h fragment at 64 c + 4 g + t and its x fragment
// 32 vectors on; a short tile row by row: vector t of row r in chunk c at c * 4 nr + 4 r + t, and the
// lanes of rows past nr read whatever follows, their sums not written; see kernel._tile_chunks)
__device__ __forceinline__ void b1_tile(const uint4 *st, int nr, int chunks, const uint2 *actp,
                                        const uint2 *actq, int g, int t, int (&v)[8]) {
    int hp[4] = {0, 0, 0, 0}, hq[4] = {0, 0, 0, 0}, xp[4] = {0, 0, 0, 0}, xq[4] = {0, 0, 0, 0};
    if (nr == 16) {
        const uint4 *f = st + 4 * g + t;
#pragma unroll 4
        for (int c = 0; c < chunks; c++)
            b1_chunk_frag(hp, hq, xp, xq, f[64 * c], f[64 * c + 32], actp[32 * c], actq[32 * c]);
    } else {
        const uint4 *rg = st + 4 * g + t, *rg8 = rg + 32;
        const int cs = 4 * nr;                              // vectors a chunk
#pragma unroll 4
        for (int c = 0; c < chunks; c++)
            b1_chunk(hp, hq, xp, xq, rg[cs * c], rg8[cs * c], actp[32 * c], actq[32 * c]);
    }
    b1_columns(v, hp, hq, xp, xq, t);
}

// A tile's sums to its rows: v (a lane's share, as b1_columns) summed over the four lanes t of a row
// group in two rounds of four shuffles (8, not 16: the first round leaves each lane one row's half), then
// lane t = 0 writes row g, t = 1 row g + 8: (Σap, Σaq, Σbp, Σbq) with a = 1 - h - x, b = x - h,
// the q parts negated on W rows (odd matrices: conj(x))
// nmul: kernel.row_matrix_multiplier(n) for matrices of n rows (the launch checks rows * n < 2**S, S =
// FAIRY_ROW_MATRIX_SHIFT, kernel.ROW_MATRIX_SHIFT, defined before this file by the launcher), so that
// a row's matrix is a multiply and a shift, not a division
__device__ __forceinline__ void store_tile(int (&v)[8], int sp, int sq, int4 *__restrict__ out, int tile,
                                           int rows, unsigned long long nmul, int g, int t) {
    // round 1 (lanes t, t ^ 1): t odd keeps row g + 8 (v 2, 3, 6, 7), t even row g (v 0, 1, 4, 5)
    const bool odd = t & 1;
    int u[4];
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const int lo = (k & 1) + 4 * (k >> 1);              // 0, 1, 4, 5
        const int keep = odd ? v[lo + 2] : v[lo], give = odd ? v[lo] : v[lo + 2];
        u[k] = keep + __shfl_xor_sync(0xffffffffu, give, 1);
    }
    // round 2 (lanes t, t ^ 2, the same row): both end with the row's four sums
#pragma unroll
    for (int k = 0; k < 4; k++) u[k] += __shfl_xor_sync(0xffffffffu, u[k], 2);
    if (t < 2) {
        const int r = tile * 16 + g + 8 * t;
        const int hp = u[0], hq = u[1], xp = u[2], xq = u[3];
        int ap = sp - hp - xp, aq = sq - hq - xq, bp = xp - hp, bq = xq - hq;
        const unsigned m = (unsigned)(((unsigned long long)r * nmul) >> FAIRY_ROW_MATRIX_SHIFT);
        if (m & 1) { aq = -aq; bq = -bq; }
        if (r < rows) out[r] = make_int4(ap, aq, bp, bq);
    }
}

// B1: codes in the bit-plane layout of pack_codes_b1 (per row and chunk of 256 codes, four 16-byte
// vectors, vector t = (h_t, h_{t+4}, x_t, x_{t+4}): word h_i holds h of codes 32i..32i+31, bit j code
// 32i + j; x likewise; the rows re-laid chunk by chunk within each tile of 16, see b1_tile) and
// activations in the layout of activation_bits (for p and q, chunk by chunk, the B fragments of the
// chunk's eight bit planes as the lanes hold them: lane 4g + t's 8-byte vector is words t and t + 4 of
// bit plane g of the int8 values, so a warp's load of a chunk is 256 consecutive bytes). One binary MMA
// (AND + POPC, m16n8k256) per plane pair and chunk: column b of the result counts h & p_b, and
// Σ h p = Σ_b<7 2^b C_b - 2^7 C_7. Four MMAs a chunk of 16 rows x 256 codes (H_p, H_q, X_p, X_q),
// against sixteen int8 MMAs of the slot layout.
// PREC > 0 (bit-plane layout, rows of at most PREC chunks): a warp takes its tile's codes into registers
// first and refills the stage before its MMAs, so that the next tile's copy runs while it computes.
template <int W, int D, int MODE, bool B1, int PREC = 0>
__global__ void __launch_bounds__(W * 32, 2)
fairy_mma_stream(const uint4 *__restrict__ codes, const uint4 *__restrict__ act, const int *__restrict__ sums,
                 int4 *__restrict__ out, int rows, unsigned long long nmul, int mw, int mwp) {
    extern __shared__ __align__(128) uint4 smem[];
    __shared__ unsigned long long bars[W * D];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int q4 = mw >> 2, chunks = mwp >> 4, tiles = (rows + 15) >> 4;
    const int t0 = (int)(((long long)blockIdx.x * tiles) / gridDim.x);
    const int t1 = (int)(((long long)(blockIdx.x + 1) * tiles) / gridDim.x);
    const int mine = t1 - t0;                               // this block's tiles
    const int stage4 = 16 * q4;                             // a stage in 16-byte vectors
    uint4 *acts = smem + (size_t)W * D * stage4;            // the token's planes, after the stages
    // warp w's k-th tile is local tile w + k W, in stage w D + k % D
    constexpr bool READ = MODE == 1;
    auto fill = [&](int k) {
        const int j = warp + k * W;
        if (j >= mine || MODE == 2) return;
        const int tile = t0 + j, nrows = min(16, rows - tile * 16);
        bulk_copy(smem + (size_t)(warp * D + k % D) * stage4, codes + (size_t)tile * stage4,
                  (u32)nrows * q4 * 16, &bars[warp * D + k % D]);
    };
    if (lane == 0) {
        for (int s = 0; s < D; s++) bar_init(&bars[warp * D + s]);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        for (int k = 0; k < D; k++) fill(k);                // codes do not depend on the previous launch
    }
    __syncwarp();
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;\n");
#endif
    for (int i = threadIdx.x; i < 2 * mwp; i += W * 32) acts[i] = act[i];   // 8 planes x mwp words
    __syncthreads();
    // slot layout: plane (p or q, slot g/2) of thread g; B1: bit plane g of p (mwp / 2 words a plane)
    // and of q (eight planes on)
    const uint4 *actj = acts + (size_t)((g & 1) * 4 + (g >> 1)) * (mwp >> 2);
    const uint2 *actp = (const uint2 *)acts + lane, *actq = actp + (size_t)2 * mwp;
    const int sp = sums[0], sq = sums[1];
    for (int k = 0; warp + k * W < mine; k++) {
        const int s = warp * D + k % D, tile = t0 + warp + k * W;
        if (MODE != 2) bar_wait(&bars[s], (u32)((k / D) & 1));
        const uint4 *st = smem + (size_t)s * stage4;
        if (READ) {
            const uint4 v = st[lane];
            __syncwarp();
            if (lane == 0) fill(k + D);
            u32 x = v.x ^ v.y ^ v.z ^ v.w;
#pragma unroll
            for (int o = 16; o; o >>= 1) x ^= __shfl_xor_sync(0xffffffffu, x, o);
            if (lane == 0) out[tile] = make_int4((int)x, 0, 0, 0);
            continue;
        }
        int v[8];                                           // Hp, Hq, Hp', Hq', Xp, Xq, Xp', Xq' (' row g+8)
        const uint4 *rg = st + (size_t)g * q4 + t, *rg8 = rg + (size_t)8 * q4;
        if (B1) {
            const int nr = min(16, rows - tile * 16);       // the tile's rows (see b1_tile's layout)
            if (PREC > 0) {
                int hp[4] = {0, 0, 0, 0}, hq[4] = {0, 0, 0, 0}, xp[4] = {0, 0, 0, 0}, xq[4] = {0, 0, 0, 0};
                uint4 cg[PREC > 0 ? PREC : 1], cg8[PREC > 0 ? PREC : 1];
                const uint4 *bg = st + 4 * g + t;
                const int cs = nr == 16 ? 64 : 4 * nr;      // a whole tile: its fragments (b1_tile)
#pragma unroll
                for (int c = 0; c < PREC; c++)
                    if (c < chunks) { cg[c] = bg[cs * c]; cg8[c] = bg[cs * c + 32]; }
                __syncwarp();                               // the tile is in registers: refill now
                if (lane == 0) fill(k + D);
#pragma unroll
                for (int c = 0; c < PREC; c++)
                    if (c < chunks) {
                        if (nr == 16) b1_chunk_frag(hp, hq, xp, xq, cg[c], cg8[c], actp[32 * c], actq[32 * c]);
                        else b1_chunk(hp, hq, xp, xq, cg[c], cg8[c], actp[32 * c], actq[32 * c]);
                    }
                b1_columns(v, hp, hq, xp, xq, t);
            } else {
                b1_tile(st, nr, chunks, actp, actq, g, t, v);
                __syncwarp();                               // every lane is done with the stage
                if (lane == 0) fill(k + D);
            }
        } else {
            int acch[4][4], accx[4][4];
            zero_regs(acch);
            zero_regs(accx);
#pragma unroll 2
            for (int c = 0; c < chunks; c++) {
                const uint4 wg = rg[4 * c], wg8 = rg8[4 * c], av = actj[4 * c + t];
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const u32 a0 = h ? wg.z : wg.x, a2 = h ? wg.w : wg.y;
                    const u32 a1 = h ? wg8.z : wg8.x, a3 = h ? wg8.w : wg8.y;
                    const u32 b0 = h ? av.z : av.x, b1 = h ? av.w : av.y;
                    const u32 s0 = a0 << 1, s1 = a1 << 1, s2 = a2 << 1, s3 = a3 << 1;
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        const u32 mh = 0x02020202u << (2 * j);
                        mma_u8s8(acch[j], a0 & mh, a1 & mh, a2 & mh, a3 & mh, b0, b1);
                        mma_u8s8(accx[j], xor_and(a0, s0, mh), xor_and(a1, s1, mh), xor_and(a2, s2, mh),
                                 xor_and(a3, s3, mh), b0, b1);
                    }
                }
            }
            __syncwarp();                                   // every lane is done with the stage
            if (lane == 0) fill(k + D);
            // column 2t + c holds slot t: undo its scale (lanes t = 0..3 then add the four slots)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int hh = acch[0][i], xx = accx[0][i];
#pragma unroll
                for (int j = 1; j < 4; j++)
                    if (t == j) { hh = acch[j][i]; xx = accx[j][i]; }
                v[i] = hh >> (2 * t + 1);
                v[4 + i] = xx >> (2 * t + 1);
            }
        }
        store_tile(v, sp, sq, out, tile, rows, nmul, g, t);
    }
}

// ------------------------------------------------------------------------------------------------------
// One token, every layer of a step in one launch (persistent; sm_90 and newer; bit-plane layout only).
// With one launch a layer the copies stop at every layer's end: the streaming kernel above issues its
// first copies before the PDL wait, but a block's few stages cover a small part of the gap. Here the grid
// is one block per SM for the whole step; each block takes its share of every layer's 16-row tiles in
// layer order (the blocks' order rotated from layer to layer, so that the uneven shares even out), cut into
// jobs of `tpj` tiles (as many as fit a stage). One producer warp walks the jobs and fills a ring of
// `stages` shared-memory stages by bulk copies, as far ahead as the ring allows: the copies never wait on
// a layer's inputs, only on a free stage and on the copy `ahead` jobs back having landed (the consumers'
// activation loads at a layer's release queue behind the block's copies in flight: kernel.PERSIST_AHEAD).
// Before each copy the producer asks the codes of the job `prefetch` jobs later into L2
// (cp.async.bulk.prefetch.L2, kernel.PERSIST_PREFETCH): a prefetch brings no data back to the SM, so it
// keeps HBM busy without lengthening the SM's queue, and the ring's copies mostly read L2, with less
// latency, so one copy in flight streams faster (session 12's prefetches 8 to 64 jobs ahead were
// evicted before their copies; 2 to 4 ahead, 6-12 MB of L2 in all, are not).
// W consumer warps take the jobs in turn (job j: warp j % W, stage j % stages): before a warp's first job
// of a layer it waits until every tile of the layer before is done (a global counter a layer, done[L],
// counted up with release and read with acquire), which is
// the dependency of a decode step's layers that the launch boundary enforced; then the stage's mbarrier,
// the MMAs of its tiles in pairs (the layer's activations in the warp's registers, loaded once the
// layer is released), the results out, the stage back to the producer, and the block's count of the
// layer. The host zeroes `done` before every launch and launches it cooperatively (every block
// resident, or the launch fails, so the waits cannot hang).
// MODE 0: all of it; 1: copies, waits and the dependency chain, no MMAs (one word a tile XORed into the
// tile's first result); 2: no copies (MMAs on whatever a stage holds); 3: no waits on the layer before;
// 4: the dependency chain alone (no copies, no MMAs; a zero into each tile's first result); 5: the MMAs
// alone (no copies, no waits on the layer before). Parts of mode 5 (and 2), to tell where its time goes:
// 6: 5 without the activation loads (registers set from the lane); 7: 5 without the MMAs (the tile's
// sums from the activations); 8: 5 without either (the job walk, the sums' stores and the counts);
// 9: 5 without the sums' stores; 10: 2 without the activation loads; 11: 2 without the activation
// loads and the MMAs (the chain, the job walk, the stores); 12: 5 without the block's counts; 13: all of
// it with each layer's count added without its release (red.relaxed: what the release's fence costs;
// a layer's results are then not published with its count, so it is a diagnosis, not a kernel).
// A layer's end is told without membar.gl: each warp's lane 0 adds its job's tiles to the block's count
// in shared memory with acq_rel at CTA scope (after __syncwarp, which orders its lanes' results before
// it), and the block's last job adds the block's tiles to the layer's global counter with release at
// GPU scope, which is cumulative: every result that the block's warps stored before their counts is
// visible to whoever reads the counter with acquire (the watcher). Measured on the H200, the chain alone
// took 168 us a step this way against 234 with a fence after every job and before the global add.

struct PersistLayer {          // written by the host (kernel.PersistPlan), 56 bytes
    const uint4 *codes;        // pack_codes_b1: rows x mwp words
    const uint2 *act;          // activation_bits of the layer's input (16 planes of mwp / 2 words)
    const int *sums;           // (Σp, Σq)
    int4 *out;                 // one (Σap, Σaq, Σbp, Σbq) a row
    int rows, n, mwp, tpj;     // rows (all matrices), rows a matrix, words a row, tiles a job
    unsigned long long nmul;   // floor(2**S / n) + 1: a row's matrix r / n as (r * nmul) >> S (store_tile)
};

__device__ __forceinline__ unsigned load_acquire(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}

// The watcher polls a layer's counter with relaxed loads and reads it once with acquire when it is
// reached: an acquire load at GPU scope compiles to the load and an invalidation of the SM's whole L1
// (CCTL.IVALL in the SASS), so a poll loop of acquires invalidated the L1 every round trip while the
// block's consumer warps loaded their activations through it. Measured on an H100, whole step: 0.612
// against 0.642 ms (same run), the MMAs and chain alone 0.457 against 0.474.
__device__ __forceinline__ unsigned load_relaxed(const unsigned *p) {
    unsigned v;
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ void bar_arrive(unsigned long long *bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}

__device__ __forceinline__ int load_acquire_cta(const int *p) {
    int v;
    asm volatile("ld.acquire.cta.shared.s32 %0, [%1];\n" : "=r"(v) : "r"(smem_addr(p)) : "memory");
    return v;
}

__device__ __forceinline__ void store_release_cta(int *p, int v) {
    asm volatile("st.release.cta.shared.s32 [%0], %1;\n" ::"r"(smem_addr(p)), "r"(v) : "memory");
}

__device__ __forceinline__ unsigned atom_add_acq_rel_cta(unsigned *p, unsigned v) {
    unsigned old;
    asm volatile("atom.acq_rel.cta.shared.add.u32 %0, [%1], %2;\n" : "=r"(old) : "r"(smem_addr(p)), "r"(v)
                 : "memory");
    return old;
}

__device__ __forceinline__ void red_add_release_gpu(unsigned *p, unsigned v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ void red_add_relaxed_gpu(unsigned *p, unsigned v) {   // (mode 13 below)
    asm volatile("red.relaxed.gpu.global.add.u32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}

// PERSIST: a warp's activations of one layer in registers, loaded once the layer is released (every
// chunk's load in flight at once: one round trip a layer, not one every few chunks of every tile; a
// chunk's load is 256 consecutive bytes, two L1 lookups: the layout of activation_bits). Plain
// loads are enough for data that other SMs wrote: the watcher's acquire at GPU scope, passed on to the
// consumers by release and acquire at CTA scope, orders them after those stores (causality order is
// transitive across the two scopes). Measured on the H200: L2-only loads (__ldcg) made the MMAs-alone
// pass 0.51 ms against 0.31.
template <int CH>
__device__ __forceinline__ void act_regs(uint2 (&ap)[CH], uint2 (&aq)[CH], const uint2 *actp,
                                         const uint2 *actq, int chunks) {
#pragma unroll
    for (int c = 0; c < CH; c++)
        if (c < chunks) {
            ap[c] = actp[32 * c];
            aq[c] = actq[32 * c];
        }
}

// PERSIST: whole tiles, `chunks` chunks (1 to CH), in two independent sets of the four sums, so that
// eight MMA chains are in flight: two tiles side by side (f1 != nullptr, each its own set) or one tile's
// even and odd chunks. f0, f1: the lane's fragments. Each chunk's body is unrolled once and guarded by
// its index (every load at a fixed offset). Loops of every exact length (1 to CH, each unrolled) made
// the kernel's code about three times longer; measured on the H200, whole step: 0.658 ms against
// 0.662-0.666, the MMAs alone 0.314 against 0.326.
template <int CH>
__device__ __forceinline__ void b1_tiles_upto(int chunks, const uint4 *f0, const uint4 *f1,
                                              const uint2 (&ap)[CH], const uint2 (&aq)[CH], int (&a)[2][4][4]) {
    if (f1) {
#pragma unroll
        for (int c = 0; c < CH; c++)
            if (c < chunks) {
                b1_chunk_frag(a[0][0], a[0][1], a[0][2], a[0][3], f0[64 * c], f0[64 * c + 32], ap[c], aq[c]);
                b1_chunk_frag(a[1][0], a[1][1], a[1][2], a[1][3], f1[64 * c], f1[64 * c + 32], ap[c], aq[c]);
            }
    } else {
#pragma unroll
        for (int c = 0; c < CH; c++)
            if (c < chunks)
                b1_chunk_frag(a[c & 1][0], a[c & 1][1], a[c & 1][2], a[c & 1][3], f0[64 * c], f0[64 * c + 32],
                              ap[c], aq[c]);
    }
}

// One tile or two (st1 != nullptr) of one job: activations from registers; a short last tile (its
// rows' layout) by b1_tile, activations from memory.
template <int CH>
__device__ __forceinline__ void b1_tiles(const uint4 *st0, int nr0, const uint4 *st1, int nr1, int chunks,
                                         const uint2 (&ap)[CH], const uint2 (&aq)[CH], const uint2 *actp,
                                         const uint2 *actq, int g, int t, int (&v0)[8], int (&v1)[8]) {
    if (nr0 < 16 || (st1 && nr1 < 16)) {
        b1_tile(st0, nr0, chunks, actp, actq, g, t, v0);
        if (st1) b1_tile(st1, nr1, chunks, actp, actq, g, t, v1);
        return;
    }
    int a[2][4][4] = {};
    const int lane = 4 * g + t;
    b1_tiles_upto<CH>(chunks, st0 + lane, st1 ? st1 + lane : nullptr, ap, aq, a);
    if (st1) {
        b1_columns(v1, a[1][0], a[1][1], a[1][2], a[1][3], t);
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) a[0][i][e] += a[1][i][e];
    }
    b1_columns(v0, a[0][0], a[0][1], a[0][2], a[0][3], t);
}

// This block's 16-row tiles of layer L: [t0, t1). The blocks' order is rotated from layer to layer, so
// that the uneven shares even out. 32-bit arithmetic (kernel.PersistPlan checks that tiles x blocks <
// 2**32); with 64-bit divisions the MMAs-alone pass took 0.326 ms against 0.295 on the H200.
__device__ __forceinline__ void persist_share(const PersistLayer &ly, int L, int &t0, int &t1) {
    const unsigned nb = gridDim.x, tiles = (unsigned)(ly.rows + 15) >> 4;
    const unsigned b = (blockIdx.x + 53u * (unsigned)L) % nb;
    t0 = (int)(b * tiles / nb);
    t1 = (int)((b + 1) * tiles / nb);
}

// A block's jobs of a step in order (the producer's walk): layer L, tiles [t, min(t + tpj, t1)); the next
// layer's descriptor loaded a layer ahead. end() past the last layer.
struct PersistJobs {
    const PersistLayer *layers;
    int nlayers, L = -1, t = 0, t1 = 0;
    PersistLayer ly, nxt;
    __device__ PersistJobs(const PersistLayer *layers_, int nlayers_) : layers(layers_), nlayers(nlayers_) {
        nxt = layers[0];
        enter();
    }
    __device__ void enter() {                          // the next layer with a tile in this block
        while (++L < nlayers) {
            ly = nxt;
            if (L + 1 < nlayers) nxt = layers[L + 1];
            persist_share(ly, L, t, t1);
            if (t < t1) return;
        }
    }
    __device__ bool end() const { return L >= nlayers; }
    __device__ void next() {
        t += ly.tpj;
        if (t >= t1) enter();
    }
    __device__ const uint4 *src() const { return ly.codes + (size_t)t * 4 * ly.mwp; }
    __device__ u32 bytes() const {                     // the job's rows x mwp words
        return (u32)(min(min(t + ly.tpj, t1) * 16, ly.rows) - t * 16) * ly.mwp * 4;
    }
};

// The block: W consumer warps, the producer (warp W), the watcher (warp W + 1). The watcher alone reads
// the global counters: for each layer in turn it waits until the layer before is done and publishes the
// layer's number in shared memory (`ready`), where the consumers wait for it. A block adds its tiles of
// a layer to done[L] once, when its last job of the layer ends (a shared count a layer, four layers in
// turn), so a layer's counter takes one atomic a block. MAX_STAGES: the ring's stages at most (the
// mbarrier pairs); MAX_TILES: a job's tiles at most (their sums are kept in registers); both from the
// host (kernel.PERSIST_MAX_STAGES, PERSIST_MAX_TILES). CH: a layer's chunks at most, rounded up to
// even (a warp holds the layer's activations in registers; kernel.PersistPlan picks it).
template <int W, int MODE, int MAX_STAGES, int MAX_TILES, int CH>
__global__ void __launch_bounds__((W + 2) * 32, 1)
fairy_mma_persist(const PersistLayer *__restrict__ layers, int nlayers, unsigned *done, int stages,
                  int stage4, int ahead, int prefetch) {
    extern __shared__ __align__(128) uint4 smem[];
    __shared__ unsigned long long full[MAX_STAGES], empty[MAX_STAGES];
    __shared__ unsigned block_done[4];
    __shared__ int ready;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    constexpr bool COPY = MODE == 0 || MODE == 1 || MODE == 3 || MODE == 13;
    constexpr bool CHAIN = MODE != 3 && (MODE < 5 || MODE == 10 || MODE == 11 || MODE == 13);
    constexpr bool MMAS = MODE == 0 || MODE == 2 || MODE == 3 || MODE >= 5;
    constexpr bool ACTS = MODE != 6 && MODE != 8 && MODE != 10 && MODE != 11;
    constexpr bool DOMMA = MODE != 7 && MODE != 8 && MODE != 11, STORE = MODE != 9, COUNT = MODE != 12;
    if (threadIdx.x == 0) {
        for (int s = 0; s < stages; s++) {
            bar_init(&full[s]);
            bar_init(&empty[s]);
        }
        for (int i = 0; i < 4; i++) block_done[i] = 0;
        ready = 0;
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (warp == W) {                                        // the producer
        if (lane == 0 && COPY) {
            unsigned long long pol;                         // the codes: evict first (see bulk_copy_ef)
            asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
            // the copies' walk, and the same walk `prefetch` jobs ahead: that job's codes are asked
            // into L2 before each copy
            PersistJobs cp(layers, nlayers), pf(layers, nlayers);
            for (int i = 0; i < prefetch && !pf.end(); i++, pf.next()) prefetch_l2(pf.src(), pf.bytes());
            for (int j = 0; !cp.end(); cp.next(), j++) {
                if (prefetch && !pf.end()) {
                    prefetch_l2(pf.src(), pf.bytes());
                    pf.next();
                }
                const int s = j % stages;
                if (j >= stages) bar_wait(&empty[s], (u32)((j / stages - 1) & 1));
                if (j >= ahead) {                           // at most `ahead` copies in flight
                    const int o = j - ahead;
                    bar_wait(&full[o % stages], (u32)((o / stages) & 1));
                }
                bulk_copy_ef(smem + (size_t)s * stage4, cp.src(), cp.bytes(), &full[s], pol);
            }
        }
        return;
    }
    if (warp == W + 1) {                                    // the watcher
        if (lane == 0 && CHAIN)
            for (int L = 1, rows = layers[0].rows; L < nlayers; L++) {
                const unsigned need = (unsigned)((rows + 15) >> 4);
                rows = layers[L].rows;                      // loaded while this layer waits
                while (load_relaxed(done + L - 1) < need) __nanosleep(20);
                (void)load_acquire(done + L - 1);           // one acquire a layer (see load_relaxed)
                store_release_cta(&ready, L);
            }
        return;
    }
    int j = 0, sp = 0, sq = 0;
    uint2 ap[CH], aq[CH];
    PersistLayer nxt = layers[0];                           // the next layer's descriptor, loaded ahead
    for (int L = 0; L < nlayers; L++) {
        const PersistLayer ly = nxt;
        if (L + 1 < nlayers) nxt = layers[L + 1];
        int t0, t1;
        persist_share(ly, L, t0, t1);
        const int q4 = ly.mwp >> 2, chunks = ly.mwp >> 4;
        bool go = false;
        const uint2 *actp = ly.act + lane, *actq = actp + (size_t)2 * ly.mwp;
        for (int tt = t0; tt < t1; tt += ly.tpj, j++) {
            if (j % W != warp) continue;
            if (!go) {                                      // every tile of the layer before is done
                if (CHAIN && L > 0) {
                    if (lane == 0)
                        while (load_acquire_cta(&ready) < L) __nanosleep(20);
                    __syncwarp();
                }
                if (MMAS && !ACTS) {                        // (modes 6, 8, 10, 11: no activation loads)
#pragma unroll
                    for (int c = 0; c < CH; c++) {
                        ap[c] = make_uint2(lane * c, L);
                        aq[c] = make_uint2(c, lane ^ L);
                    }
                    sp = L;
                    sq = lane;
                } else if (MMAS) {
                    act_regs(ap, aq, actp, actq, chunks);
                    sp = ly.sums[0];
                    sq = ly.sums[1];
                }
                go = true;
            }
            const int s = j % stages, nt = min(ly.tpj, t1 - tt);
            if (COPY) bar_wait(&full[s], (u32)((j / stages) & 1));
            const uint4 *st = smem + (size_t)s * stage4;
            if (MODE == 4) {
                if (lane == 0) ly.out[tt * 16] = make_int4(0, 0, 0, 0);
            } else if (!MMAS) {
                const uint4 v = st[lane];
                __syncwarp();
                if (lane == 0) bar_arrive(&empty[s]);
                u32 x = v.x ^ v.y ^ v.z ^ v.w;
#pragma unroll
                for (int o = 16; o; o >>= 1) x ^= __shfl_xor_sync(0xffffffffu, x, o);
                if (lane == 0) ly.out[tt * 16] = make_int4((int)x, 0, 0, 0);
            } else {
                // tiles in pairs, each pair's sums stored at once (fewer registers held), the stage
                // given back after the last pair
#pragma unroll
                for (int i = 0; i < MAX_TILES; i += 2)
                    if (i < nt) {
                        int v0[8], v1[8];
                        const bool two = i + 1 < nt;
                        if (DOMMA) {
                            b1_tiles(st + (size_t)i * 16 * q4, min(16, ly.rows - (tt + i) * 16),
                                     two ? st + (size_t)(i + 1) * 16 * q4 : nullptr,
                                     min(16, ly.rows - (tt + i + 1) * 16), chunks, ap, aq, actp, actq, g,
                                     t, v0, v1);
                        } else {                            // (modes 7, 8, 11: no MMAs)
#pragma unroll
                            for (int e = 0; e < 8; e++) {
                                v0[e] = (int)(ap[e % CH].x ^ aq[e % CH].y) + i;
                                v1[e] = (int)(ap[e % CH].y ^ aq[e % CH].x) - i;
                            }
                        }
                        if (STORE) {
                            store_tile(v0, sp, sq, ly.out, tt + i, ly.rows, ly.nmul, g, t);
                            if (two) store_tile(v1, sp, sq, ly.out, tt + i + 1, ly.rows, ly.nmul, g, t);
                        } else {                            // (mode 9: the sums kept, not stored)
                            int x = 0;
#pragma unroll
                            for (int e = 0; e < 8; e++) x += v0[e] ^ v1[e];
                            if (x == 0x12345678) ly.out[tt * 16 + lane] = make_int4(x, 0, 0, 0);
                        }
                    }
                __syncwarp();                               // every lane is done with the stage
                if (lane == 0 && COPY) bar_arrive(&empty[s]);
            }
            __syncwarp();                                   // the lanes' results before lane 0's count
            if (lane == 0 && COUNT) {
                const unsigned mine = (unsigned)(t1 - t0);
                const unsigned before = atom_add_acq_rel_cta(&block_done[L & 3], (unsigned)nt);
                if (before + nt == mine) {                  // the block's last job of the layer
                    block_done[L & 3] = 0;
                    if constexpr (MODE != 13)
                        red_add_release_gpu(done + L, mine);
                    else                                    // (mode 13: the diagnosis above)
                        red_add_relaxed_gpu(done + L, mine);
                }
            }
        }
    }
}

