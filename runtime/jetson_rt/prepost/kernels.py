"""CUDA C source of the pre- and post-processing kernels (compiled by NVRTC).

Compiled with ``--fmad=false``: every float operation is rounded as numpy
rounds it, in the same order as :mod:`jetson_rt.prepost.cpu`, so the two lanes
agree bit for bit on pre-processing and on which boxes NMS keeps.

- ``jrt_pre``: one thread per output pixel; NV12/BGR/RGB/gray source, the four
  bilinear neighbours from the shared geometry tables, OpenCV's fixed-point
  BT.601 conversion, ``pixel * a + b``, CHW or HWC, fp32 or fp16 (``cvt.rn``).
- ``jrt_decode``: one thread per candidate; best class (times objectness),
  score threshold, cxcywh -> xyxy, appended with an atomic counter.
- ``jrt_rank``: sorts the candidates by score (ties: lower candidate index)
  by counting, O(n^2) over shared-memory tiles, no scratch allocation.
- ``jrt_nms_mask``: the IoU bit matrix, 64x64 tiles, same class only (as
  torchvision's CUDA NMS, IoU > threshold).
- ``jrt_nms_select``: one warp walks the sorted candidates, keeps a box not
  yet suppressed and ORs its row into the suppressed set; stops at max_det;
  writes count + ``[max_det, 6]`` rows (mapped to source pixels if asked).
- ``jrt_classify``: one block; softmax (optional) and top-k by repeated argmax.
"""

from __future__ import annotations

OPTIONS = ("--fmad=false", "--std=c++17")

SOURCE = rb"""
typedef unsigned char u8;
typedef unsigned long long u64;

__device__ __forceinline__ unsigned short f2h(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float h2f(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ float load(const void* p, int half_in, long long i) {
    return half_in ? h2f(((const unsigned short*)p)[i]) : ((const float*)p)[i];
}

__device__ __forceinline__ int clamp255(int v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

// One source pixel as R, G, B (gray: all three the same value).
__device__ __forceinline__ void fetch(const u8* src, int fmt, int w, int h, int y, int x,
                                      float* rgb) {
    if (fmt == 0) {
        int Y = (int)src[y * w + x] - 16;
        Y = (Y < 0 ? 0 : Y) * 1220542;
        const u8* uv = src + (long long)h * w + (long long)(y >> 1) * w + (x & ~1);
        int U = (int)uv[0] - 128, V = (int)uv[1] - 128;
        rgb[0] = (float)clamp255((V * 1673527 + Y + (1 << 19)) >> 20);
        rgb[1] = (float)clamp255((V * -852492 + U * -409993 + Y + (1 << 19)) >> 20);
        rgb[2] = (float)clamp255((U * 2116026 + Y + (1 << 19)) >> 20);
    } else if (fmt == 3) {
        float v = (float)src[y * w + x];
        rgb[0] = rgb[1] = rgb[2] = v;
    } else {
        const u8* p = src + ((long long)y * w + x) * 3;
        if (fmt == 1) { rgb[0] = p[2]; rgb[1] = p[1]; rgb[2] = p[0]; }
        else          { rgb[0] = p[0]; rgb[1] = p[1]; rgb[2] = p[2]; }
    }
}

extern "C" __global__ void jrt_pre(
    const u8* src, int src_w, int src_h, int fmt,
    const int* xtab, const float* wxtab, const int* ytab, const float* wytab,
    int out_w, int out_h, int channels, int bgr_out, int chw, int half_out,
    float a0, float a1, float a2, float b0, float b1, float b2,
    float pad0, float pad1, float pad2, void* dst)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= out_w || y >= out_h) return;
    float a[3] = {a0, a1, a2}, b[3] = {b0, b1, b2}, pad[3] = {pad0, pad1, pad2};
    float value[3];
    int x0 = xtab[x], y0 = ytab[y];
    if (x0 < 0 || y0 < 0) {
        value[0] = pad0; value[1] = pad1; value[2] = pad2;
    } else {
        int x1 = xtab[out_w + x], y1 = ytab[out_h + y];
        float wx0 = wxtab[x], wx1 = wxtab[out_w + x];
        float wy0 = wytab[y], wy1 = wytab[out_h + y];
        float p00[3], p01[3], p10[3], p11[3];
        fetch(src, fmt, src_w, src_h, y0, x0, p00);
        fetch(src, fmt, src_w, src_h, y0, x1, p01);
        fetch(src, fmt, src_w, src_h, y1, x0, p10);
        fetch(src, fmt, src_w, src_h, y1, x1, p11);
        for (int c = 0; c < channels; ++c) {
            int s = bgr_out ? 2 - c : c;
            float top = p00[s] * wx0 + p01[s] * wx1;
            float bottom = p10[s] * wx0 + p11[s] * wx1;
            float v = top * wy0 + bottom * wy1;
            value[c] = v * a[c] + b[c];
        }
    }
    (void)pad;
    long long plane = (long long)out_w * out_h;
    for (int c = 0; c < channels; ++c) {
        long long i = chw ? c * plane + (long long)y * out_w + x
                          : ((long long)y * out_w + x) * channels + c;
        if (half_out) ((unsigned short*)dst)[i] = f2h(value[c]);
        else ((float*)dst)[i] = value[c];
    }
}

extern "C" __global__ void jrt_decode(
    const void* raw, int half_in, int anchors, int classes, int has_obj, int channels_first,
    float threshold, float* cand_box, float* cand_score, int* cand_cls, int* cand_idx,
    int* counter)
{
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= anchors) return;
    int first = 4 + has_obj;
    long long stride_c = channels_first ? anchors : 1;
    long long stride_a = channels_first ? 1 : first + classes;
    long long base = (long long)a * stride_a;
    float best = load(raw, half_in, base + first * stride_c);
    int best_c = 0;
    for (int c = 1; c < classes; ++c) {
        float v = load(raw, half_in, base + (first + c) * stride_c);
        if (v > best) { best = v; best_c = c; }
    }
    float score = has_obj ? best * load(raw, half_in, base + 4 * stride_c) : best;
    if (!(score > threshold)) return;
    int slot = atomicAdd(counter, 1);
    float cx = load(raw, half_in, base);
    float cy = load(raw, half_in, base + stride_c);
    float w = load(raw, half_in, base + 2 * stride_c);
    float h = load(raw, half_in, base + 3 * stride_c);
    cand_box[slot * 4 + 0] = cx - w * 0.5f;
    cand_box[slot * 4 + 1] = cy - h * 0.5f;
    cand_box[slot * 4 + 2] = cx + w * 0.5f;
    cand_box[slot * 4 + 3] = cy + h * 0.5f;
    cand_score[slot] = score;
    cand_cls[slot] = best_c;
    cand_idx[slot] = a;
}

extern "C" __global__ void jrt_rank(
    const float* cand_box, const float* cand_score, const int* cand_cls, const int* cand_idx,
    const int* counter, float* s_box, float* s_score, int* s_cls, float* s_area)
{
    __shared__ float tile_s[256];
    __shared__ int tile_i[256];
    int n = *counter;
    if (blockIdx.x * blockDim.x >= n) return;  // the whole block: uniform
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float si = i < n ? cand_score[i] : 0.0f;
    int ii = i < n ? cand_idx[i] : 0;
    int rank = 0;
    for (int base = 0; base < n; base += blockDim.x) {
        int j = base + threadIdx.x;
        tile_s[threadIdx.x] = j < n ? cand_score[j] : 0.0f;
        tile_i[threadIdx.x] = j < n ? cand_idx[j] : 0;
        __syncthreads();
        int limit = min((int)blockDim.x, n - base);
        for (int k = 0; k < limit; ++k) {
            float s = tile_s[k];
            rank += (s > si) || (s == si && tile_i[k] < ii);
        }
        __syncthreads();
    }
    if (i >= n) return;
    float x1 = cand_box[i * 4], y1 = cand_box[i * 4 + 1];
    float x2 = cand_box[i * 4 + 2], y2 = cand_box[i * 4 + 3];
    s_box[rank * 4] = x1; s_box[rank * 4 + 1] = y1;
    s_box[rank * 4 + 2] = x2; s_box[rank * 4 + 3] = y2;
    s_score[rank] = si;
    s_cls[rank] = cand_cls[i];
    s_area[rank] = (x2 - x1) * (y2 - y1);
}

extern "C" __global__ void jrt_nms_mask(
    const float* box, const float* area, const int* cls, const int* counter, float iou_threshold,
    int words, u64* mask)
{
    int n = *counter;
    int rb = blockIdx.y, cb = blockIdx.x;
    if (cb < rb || rb * 64 >= n || cb * 64 >= n) return;
    __shared__ float sb[64 * 4];
    __shared__ float sa[64];
    __shared__ int sc[64];
    int t = threadIdx.x;
    int col0 = cb * 64;
    int cols = min(64, n - col0);
    if (t < cols) {
        for (int k = 0; k < 4; ++k) sb[t * 4 + k] = box[(col0 + t) * 4 + k];
        sa[t] = area[col0 + t];
        sc[t] = cls[col0 + t];
    }
    __syncthreads();
    int i = rb * 64 + t;
    if (i >= n) return;
    float x1 = box[i * 4], y1 = box[i * 4 + 1], x2 = box[i * 4 + 2], y2 = box[i * 4 + 3];
    float ai = area[i];
    int ci = cls[i];
    u64 bits = 0;
    for (int k = (rb == cb) ? t + 1 : 0; k < cols; ++k) {
        if (sc[k] != ci) continue;
        float w = fminf(x2, sb[k * 4 + 2]) - fmaxf(x1, sb[k * 4]);
        float h = fminf(y2, sb[k * 4 + 3]) - fmaxf(y1, sb[k * 4 + 1]);
        w = fmaxf(w, 0.0f);
        h = fmaxf(h, 0.0f);
        float inter = w * h;
        float iou = inter / (ai + sa[k] - inter);
        if (iou > iou_threshold) bits |= 1ULL << k;
    }
    mask[(long long)i * words + cb] = bits;
}

extern "C" __global__ void jrt_nms_select(
    const float* box, const float* score, const int* cls, const int* counter, const u64* mask,
    int words, int max_det, int map, float ox, float oy, float gx, float gy, float width,
    float height, int* out_count, float* out)
{
    extern __shared__ u64 removed[];
    int lane = threadIdx.x;
    int n = *counter;
    int used = (n + 63) / 64;
    for (int k = lane; k < used; k += 32) removed[k] = 0;
    __syncwarp();
    int kept = 0;
    for (int i = 0; i < n && kept < max_det; ++i) {
        if ((removed[i >> 6] >> (i & 63)) & 1ULL) continue;
        if (lane == 0) {
            float v[4] = {box[i * 4], box[i * 4 + 1], box[i * 4 + 2], box[i * 4 + 3]};
            if (map) {
                float off[4] = {ox, oy, ox, oy}, gain[4] = {gx, gy, gx, gy};
                float lim[4] = {width, height, width, height};
                for (int k = 0; k < 4; ++k) {
                    float m = (v[k] + off[k]) * gain[k];
                    v[k] = fminf(fmaxf(m, 0.0f), lim[k]);
                }
            }
            float* row = out + kept * 6;
            row[0] = v[0]; row[1] = v[1]; row[2] = v[2]; row[3] = v[3];
            row[4] = score[i];
            row[5] = (float)cls[i];
        }
        ++kept;
        const u64* bits = mask + (long long)i * words;
        for (int k = (i >> 6) + lane; k < used; k += 32) removed[k] |= bits[k];
        __syncwarp();
    }
    for (int k = kept * 6 + lane; k < max_det * 6; k += 32) out[k] = 0.0f;
    if (lane == 0) *out_count = kept;
}

__device__ __forceinline__ void arg_better(float v, int i, float& best, int& best_i) {
    if (v > best || (v == best && i < best_i)) { best = v; best_i = i; }
}

extern "C" __global__ void jrt_classify(
    const void* raw, int half_in, int classes, int softmax, int top_k, float* prob,
    int* out_cls, float* out_score)
{
    __shared__ float sv[1024];
    __shared__ int si[1024];
    int t = threadIdx.x, n = blockDim.x;
    float m = __int_as_float(0xff800000);
    for (int c = t; c < classes; c += n) m = fmaxf(m, load(raw, half_in, c));
    sv[t] = m;
    __syncthreads();
    for (int s = n / 2; s > 0; s >>= 1) {
        if (t < s) sv[t] = fmaxf(sv[t], sv[t + s]);
        __syncthreads();
    }
    m = sv[0];
    __syncthreads();
    float sum = 0.0f;
    for (int c = t; c < classes; c += n) {
        float x = load(raw, half_in, c);
        float e = softmax ? expf(x - m) : x;
        prob[c] = e;
        sum += e;
    }
    sv[t] = sum;
    __syncthreads();
    for (int s = n / 2; s > 0; s >>= 1) {
        if (t < s) sv[t] += sv[t + s];
        __syncthreads();
    }
    sum = sv[0];
    __syncthreads();
    if (softmax) for (int c = t; c < classes; c += n) prob[c] = prob[c] / sum;
    __syncthreads();
    for (int k = 0; k < top_k; ++k) {
        float best = __int_as_float(0xff800000);
        int best_i = 0x7fffffff;
        for (int c = t; c < classes; c += n) arg_better(prob[c], c, best, best_i);
        sv[t] = best;
        si[t] = best_i;
        __syncthreads();
        for (int s = n / 2; s > 0; s >>= 1) {
            if (t < s) {
                float b = sv[t];
                int bi = si[t];
                arg_better(sv[t + s], si[t + s], b, bi);
                sv[t] = b;
                si[t] = bi;
            }
            __syncthreads();
        }
        if (t == 0) {
            out_cls[k] = si[0];
            out_score[k] = sv[0];
            prob[si[0]] = __int_as_float(0xff800000);
        }
        __syncthreads();
    }
}
"""
