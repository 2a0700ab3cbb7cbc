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
