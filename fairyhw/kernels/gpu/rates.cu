// Tensor-core instruction rates on the GPU the bench runs on: how many cycles of an SM one instruction
// of each MMA form takes when every warp keeps CH independent accumulators busy (throughput), and with
// one accumulator (latency). The bench (fairyhw.bench.gpu.time_mma_rates) uses these to say what bounds
// the batch-1 kernels' arithmetic. Built at run time by NVRTC, the wgmma forms for sm_90a.
//   mma_i8:  mma.sync m16n8k32 u8 x s8 -> s32 (a warp; the slot layout's instruction)
//   mma_b1:  mma.sync m16n8k256 b1 AND + POPC -> s32 (a warp; the bit-plane layout's instruction)
//   wg_i8:   wgmma m64n8k32 u8 (registers) x s8 (shared memory) -> s32 (a warpgroup of 4 warps)
// Each thread writes the sum of its accumulators (so that nothing is optimised away); thread 0 of each
// block writes its clock64 cycles. wg_check computes one 64 x 8 product, to check the fragment layout.

typedef unsigned int u32;
typedef unsigned long long u64;

__device__ __forceinline__ u64 wg_desc(const void *smem, u32 lbo, u32 sbo) {
    // the matrix descriptor of a K-major operand without swizzle: start, leading (K) and stride byte
    // offsets, each in 16-byte units
    const u32 a = (u32)__cvta_generic_to_shared(smem);
    return (u64)((a & 0x3ffff) >> 4) | (u64)((lbo & 0x3ffff) >> 4) << 16 | (u64)((sbo & 0x3ffff) >> 4) << 32;
}

__device__ __forceinline__ void wg_i8(int (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3, u64 db, int acc) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %9, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k32.s32.u8.s8 {%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, p;\n}\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(acc));
#endif
}

__device__ __forceinline__ void wg_fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wg_commit_wait() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}

// B (32 x 8, s8) for wgmma: two 8 x 16-byte core matrices (k 0..15, k 16..31), each row n 16 bytes
__device__ __forceinline__ void wg_fill_b(signed char *bs, const signed char *bt) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) {
        const int c = i >> 7, n = (i >> 4) & 7, k = i & 15;
        bs[i] = bt[n * 32 + 16 * c + k];
    }
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");   // ordinary stores, read by wgmma
    __syncthreads();
}

// a: 64 x 32 u8 row-major; bt: 8 x 32 s8 (row n is column n of B); d: 64 x 8 s32
extern "C" __global__ void wg_check(const unsigned char *a, const signed char *bt, int *d) {
    __shared__ __align__(128) signed char bs[256];
    wg_fill_b(bs, bt);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int r = 16 * warp + g;                       // the m16n8k32 A layout, warp w on rows 16w..
    const u32 a0 = *(const u32 *)(a + r * 32 + 4 * t), a1 = *(const u32 *)(a + (r + 8) * 32 + 4 * t);
    const u32 a2 = *(const u32 *)(a + r * 32 + 16 + 4 * t), a3 = *(const u32 *)(a + (r + 8) * 32 + 16 + 4 * t);
    int c[4] = {0, 0, 0, 0};
    wg_fence();
    wg_i8(c, a0, a1, a2, a3, wg_desc(bs, 128, 256), 0);
    wg_commit_wait();
    d[r * 8 + 2 * t] = c[0];
    d[r * 8 + 2 * t + 1] = c[1];
    d[(r + 8) * 8 + 2 * t] = c[2];
    d[(r + 8) * 8 + 2 * t + 1] = c[3];
}

template <int FORM, int CH>
__device__ __forceinline__ void rate(int iters, int *out, long long *cycles) {
    __shared__ __align__(128) signed char bs[CH][256];
    if (FORM == 2) {
        for (int i = threadIdx.x; i < CH * 256; i += blockDim.x) (&bs[0][0])[i] = (signed char)(7 * i);
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
    }
    int d[CH][4];
#pragma unroll
    for (int j = 0; j < CH; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) d[j][i] = 0;
    u32 a = threadIdx.x * 0x01010101u;
    const long long c0 = clock64();
    for (int it = 0; it < iters; it++) {
        if (FORM == 2) wg_fence();
#pragma unroll
        for (int j = 0; j < CH; j++) {
            if (FORM == 0)
                asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                             "{%8,%9}, {%0,%1,%2,%3};\n"
                             : "+r"(d[j][0]), "+r"(d[j][1]), "+r"(d[j][2]), "+r"(d[j][3])
                             : "r"(a + j), "r"(a ^ j), "r"(a), "r"(a + 1), "r"(3 * a), "r"(a + 5));
            else if (FORM == 1)
                asm volatile("mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, "
                             "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                             : "+r"(d[j][0]), "+r"(d[j][1]), "+r"(d[j][2]), "+r"(d[j][3])
                             : "r"(a + j), "r"(a ^ j), "r"(a), "r"(a + 1), "r"(3 * a), "r"(a + 5));
            else
                wg_i8(d[j], a + j, a ^ j, a + 2 * j, a, wg_desc(bs[j], 128, 256), 1);
        }
        if (FORM == 2) wg_commit_wait();
        a += 0x01020304u;
    }
    const long long c1 = clock64();
    int s = 0;
#pragma unroll
    for (int j = 0; j < CH; j++) s += d[j][0] + d[j][1] + d[j][2] + d[j][3];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
    if (threadIdx.x == 0) cycles[blockIdx.x] = c1 - c0;
}

template <int FORM, int CH>
__global__ void mma_rate(int iters, int *out, long long *cycles) { rate<FORM, CH>(iters, out, cycles); }
