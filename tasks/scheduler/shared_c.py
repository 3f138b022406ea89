"""C source of a ``Shared1LDS`` (fp32 or int8): the token gather, the shared MLP and the pooled "none" head.

``Shared1LDS.c_source`` calls :func:`shared_1lds_c_source`; ``compress.export.export_c`` wraps the result
in its header, kernels and harness, so the network exports, compiles and is timed like any C student
(``export: {c: true, c_int8: true}`` in a recipe, ``compress.export.runner.load_artifact`` closed-loop).

The forward is the PyTorch one (``tasks/scheduler/shared.py``) for one state, written so that the SIMD
lanes run over the 180 tokens (candidate u, RBG m), not over the few hidden units: activations are stored
feature-major, ``X[k][t]`` with ``t = u * N_RBG + m`` (rows padded to a multiple of 16), and a layer
computes 16 tokens at a time, ``acc[0:16] += w[o, k] * x[k][t0:t0+16]`` with the accumulator in a
register, then its epilogue (ReLU, the next layer's input quantization) before one store. AVX-512
intrinsics when the compiler targets them, a portable 16-lane loop otherwise (same results). Measured
(width 8, 8 passes, this machine): a token-major layout (one small MLP call per token) took 115 us per
TTI; feature-major loops 15 us; with the accumulator in registers 6 - 7 us (fp32). int8 is slower here
(10 - 13 us): quantizing the activations costs more than the int8 arithmetic saves for a width-8 MLP.

* Per candidate: present (any non-zero value); the TTI's depth (sum d^ / 8); the slot u / abs(U). Per RBG:
  the largest g^ and the mean rho over present candidates.
* The first layer is factorised (an exact rewrite of the same sum): seven of a token's 11 features are the
  candidate's (the UE's five, slot, depth) and two the RBG's, so ``a_u = b + W_cand x_u`` and ``c_m =
  W_rbg x_m`` are computed once per pass and each token adds ``w_g g^_um + w_rho rho_um``. The input
  segment already holds a candidate's g^ and rho for all RBGs contiguously, i.e. in token order.
* The body's output is zeroed for absent candidates (the model multiplies by ``present``); the head runs on
  every token; "none" on RBG m is the ``none`` MLP of the element-wise max over the RBG's candidates.
* int8 (a QAT-prepared model): weights are the QAT int8 codes (``int8_t`` arrays), activations are
  quantized with each layer's QAT input scale / zero-point (``zp + nearbyint(x / scale)``, clamped, as the
  fake-quant does), and a layer is ``y = m_o (b_o + sum_k w_ok (q_k - zp))`` with the int32 bias and one
  fp32 multiplier per output, as in ``compress.export``'s int8 kernel. The producer of a quantized layer's
  input writes the codes (minus zp) directly. The integer products are accumulated in fp32 lanes, exact
  while ``K x 127 x 255 < 2^24`` (checked at export: up to 518 inputs), so these are the integers of an
  int32 accumulator at the fp32 kernel's speed (an int32 lane multiply is slower on x86, and VPDPBUSD wants
  4 inputs per lane, i.e. a token-major layout). Equal to the fake-quant model up to float rounding.
"""
from __future__ import annotations

import numpy as np

from compress.errors import UserError
from compress.export.c_export import c_array as _array, c_float as _f32
from compress.quant.fake_quant import ACT_QMAX, ACT_QMIN, QATLinear
from tasks.scheduler.models import N_UE_FEATURES

__all__ = ["shared_1lds_c_source"]

_CAND = list(range(N_UE_FEATURES)) + [N_UE_FEATURES + 4, N_UE_FEATURES + 5]   # UE's five, slot, depth
_RBG = [N_UE_FEATURES + 2, N_UE_FEATURES + 3]                                 # RBG max g^, mean rho
_G, _RHO = N_UE_FEATURES, N_UE_FEATURES + 1                                   # the token's own g^_m, rho_m
_EXACT = 2 ** 24
_QMIN, _QMAX = f"{ACT_QMIN}.0f", f"{ACT_QMAX}.0f"

_KERNELS = r"""
#if defined(__AVX512F__)
#include <immintrin.h>
#define SX_AVX512 1
#else
#define SX_AVX512 0
#endif

/* the next layer's input: clamp(zp + nearbyint(x * inv), QMIN, QMAX) - zp (an integer-valued float),
   computed as clamp(nearbyint(x * inv), QMIN - zp, QMAX - zp): the same integer, two operations fewer */
CX_INLINE float sx_q1(const float x, const float inv, const float zp)
{
    float v = nearbyintf(x * inv);
    v = v < QMIN - zp ? QMIN - zp : v;
    v = v > QMAX - zp ? QMAX - zp : v;
    return v;
}

#if SX_AVX512
CX_INLINE __m512 sx_q16(const __m512 x, const float inv, const float zp)
{
    const __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(inv)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(QMIN - zp)), _mm512_set1_ps(QMAX - zp));
}
#endif

/* One Linear on feature-major activations x[K][S], 16 tokens at a time (T a multiple of 16):
   acc = b[o] + sum_k w[o*K + k] x[k] (fp32, m NULL) or m[o] (b[o] + sum_k w[o*K + k] x[k]) (int8 codes,
   x = input codes - zp), then ReLU (relu != 0), stored as float in y. qy (if given): the next layer's
   input codes minus its zero-point, clamped to [lo, hi] (lo = 0 after a ReLU, which it then implies);
   from y times inv, or - without y - as nearbyint(acc * mq[o] + bq[o]) with the dequantization, the bias
   and the next scale folded into one multiply-add (the same code but for a product within an ulp of a
   rounding boundary). */
#if SX_AVX512
#define SX_BLOCK                                                                                          \
            __m512 acc = _mm512_set1_ps(m ? 0.0f : b[o]);                                                 \
            for (int k = 0; k < K; ++k)                                                                   \
                acc = _mm512_fmadd_ps(_mm512_set1_ps(wo[k]), _mm512_loadu_ps(x + (long)k * S + t0), acc); \
            if (qy && !y && mq) {                                                                         \
                __m512 v = _mm512_fmadd_ps(acc, _mm512_set1_ps(mq[o]), _mm512_set1_ps(bq[o]));           \
                v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);               \
                v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));             \
                _mm512_storeu_ps(qy + (long)o * S + t0, v);                                               \
            } else {                                                                                      \
                if (m) acc = _mm512_mul_ps(_mm512_add_ps(acc, _mm512_set1_ps(b[o])), _mm512_set1_ps(m[o])); \
                if (relu) acc = _mm512_max_ps(acc, _mm512_setzero_ps());                                  \
                if (y) _mm512_storeu_ps(y + (long)o * S + t0, acc);                                       \
                if (qy) {                                                                                 \
                    __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(acc, _mm512_set1_ps(inv)),              \
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);       \
                    if (!relu) v = _mm512_max_ps(v, _mm512_set1_ps(lo));                                  \
                    _mm512_storeu_ps(qy + (long)o * S + t0, _mm512_min_ps(v, _mm512_set1_ps(hi)));        \
                }                                                                                         \
            }
#else
#define SX_BLOCK                                                                                          \
            float acc[16];                                                                                \
            for (int l = 0; l < 16; ++l) acc[l] = m ? 0.0f : b[o];                                        \
            for (int k = 0; k < K; ++k)                                                                   \
                for (int l = 0; l < 16; ++l) acc[l] += wo[k] * x[(long)k * S + t0 + l];                   \
            for (int l = 0; l < 16; ++l) {                                                                \
                float v, q;                                                                               \
                if (qy && !y && mq) {                                                                     \
                    q = nearbyintf(acc[l] * mq[o] + bq[o]);                                               \
                } else {                                                                                  \
                    v = m ? (acc[l] + b[o]) * m[o] : acc[l];                                              \
                    if (relu) v = v < 0.0f ? 0.0f : v;                                                    \
                    if (y) y[(long)o * S + t0 + l] = v;                                                   \
                    q = nearbyintf(v * inv);                                                              \
                }                                                                                         \
                if (qy) { q = q < lo ? lo : q; qy[(long)o * S + t0 + l] = q > hi ? hi : q; }              \
            }
#endif
#define SX_LAYER(NAME, WT)                                                                                \
CX_INLINE void NAME(const WT *restrict w, const float *restrict b, const float *restrict m,               \
                    const float *restrict x, float *restrict y, float *restrict qy,                       \
                    const float *restrict mq, const float *restrict bq, const int K, const int O,         \
                    const int T, const int S, const int relu, const float inv, const float lo,            \
                    const float hi)                                                                       \
{                                                                                                         \
    for (int o = 0; o < O; ++o) {                                                                         \
        float wo[K];                                                                                      \
        for (int k = 0; k < K; ++k) wo[k] = (float)w[o * K + k];                                          \
        for (int t0 = 0; t0 < T; t0 += 16) {                                                              \
            SX_BLOCK                                                                                      \
        }                                                                                                 \
    }                                                                                                     \
}
SX_LAYER(sx_dense, float)
SX_LAYER(sx_dense_i8, int8_t)

CX_INLINE void sx_quant(const float *restrict x, float *restrict q, const int n, const float inv, const float zp)
{
#if SX_AVX512
    for (int i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(q + i, k, sx_q16(_mm512_maskz_loadu_ps(k, x + i), inv, zp));
    }
#else
    for (int i = 0; i < n; ++i) q[i] = sx_q1(x[i], inv, zp);
#endif
}
""".replace("QMIN", _QMIN).replace("QMAX", _QMAX)


def _linears(seq) -> list:
    return [m for m in seq if hasattr(m, "in_features")]


class _Layer:
    """One Linear: its arrays and the C call running it on feature-major activations."""

    def __init__(self, m, prefix: str, int8: bool):
        self.m, self.p, self.K, self.O = m, prefix, m.in_features, m.out_features
        self.q = bool(int8 and isinstance(m, QATLinear))
        if self.q:
            if self.K * 127 * 255 >= _EXACT:
                raise UserError(f"Shared1LDS C export, layer {prefix}: {self.K} inputs are too many for the exact "
                                "fp32 accumulation of int8 products (at most 518)")
            self.t = m.quantized_tensors()

    def arrays(self, input_major: bool = False) -> str:
        m, p = self.m, self.p
        if not self.q:
            w = m.weight.detach().float().numpy()
            b = m.bias.detach().float().numpy() if m.bias is not None else np.zeros(self.O, np.float32)
            return _array("float", f"{p}_W", np.ascontiguousarray(w.T) if input_major else w) + _array("float", f"{p}_B", b)
        t = self.t
        w = t["w_int8"].numpy()
        b = t["b_int32"].numpy().astype(np.float32) if t["b_int32"] is not None else np.zeros(self.O, np.float32)
        mult = (t["in_scale"] * t["w_scale"]).float().numpy()
        return (_array("int8_t", f"{p}_W", np.ascontiguousarray(w.T) if input_major else w)
                + _array("float", f"{p}_B", b) + _array("float", f"{p}_M", mult))

    def in_quant(self) -> tuple[str, str]:
        """(1 / scale, zero-point) C literals of the layer's input fake-quant."""
        return _f32(np.float32(1.0) / np.float32(self.t["in_scale"])), _f32(int(self.t["in_zp"]))

    def code_range(self, relu: bool) -> tuple[str, str]:
        """[lo, hi] of its input codes minus the zero-point; lo = 0 after a ReLU (QMIN - zp <= 0)."""
        zp = int(self.t["in_zp"])
        return _f32(0 if relu else ACT_QMIN - zp), _f32(ACT_QMAX - zp)

    def folded(self, nxt: "_Layer") -> str:
        """``<p>_MQ`` = m * (1 / next scale) and ``<p>_BQ`` = b * that: the int8 epilogue straight to codes."""
        inv = np.float32(1.0) / np.float32(nxt.t["in_scale"])
        b = self.t["b_int32"].numpy().astype(np.float32) if self.t["b_int32"] is not None else np.zeros(self.O, np.float32)
        mq = (self.t["in_scale"] * self.t["w_scale"]).float().numpy() * inv
        return _array("float", f"{self.p}_MQ", mq.astype(np.float32)) + _array("float", f"{self.p}_BQ", (b * mq).astype(np.float32))

    def call(self, x: str, y: str, T: int, S: int, relu: bool, nxt: "_Layer | None" = None, qy: str = "0") -> str:
        """``y`` (float, or "0") and, if ``nxt`` is quantized, its input codes in ``qy`` (with ``y`` "0" and
        this layer int8: by the folded epilogue, whose arrays ``folded(nxt)`` adds to ``self.extra``)."""
        q_out = nxt is not None and nxt.q
        inv, lo, hi = (nxt.in_quant()[0], *nxt.code_range(relu)) if q_out else ("0.0f", "0.0f", "0.0f")
        fn, m = ("sx_dense_i8", f"{self.p}_M") if self.q else ("sx_dense", "0")
        mq = bq = "0"
        if q_out and self.q and y == "0":
            self.extra = self.folded(nxt)
            mq, bq = f"{self.p}_MQ", f"{self.p}_BQ"
        code = (f"    {fn}({self.p}_W, {self.p}_B, {m}, {x}, {y}, {qy if q_out else '0'}, {mq}, {bq}, {self.K}, "
                f"{self.O}, {T}, {S}, {int(relu)}, {inv}, {lo}, {hi});\n")
        if self.q and self.t["out_scale"] is not None:   # QAT's output fake-quant (the model's last layer)
            so, zo = np.float32(self.t["out_scale"]), int(self.t["out_zp"])
            code += (f"    sx_quant({y}, OQ, {self.O * S}, {_f32(np.float32(1.0) / so)}, {_f32(zo)});\n"
                     f"    for (int i = 0; i < {self.O * S}; ++i) {y}[i] = OQ[i] * {_f32(so)};\n")
        return code


def shared_1lds_c_source(model, name: str, int8: bool) -> dict:
    """``{"source", "n_in", "n_out", "n_params", "summary"}`` for ``compress.export.export_c``."""
    U, M, n_out = model.n_cand, model.n_rbg, model.n_out
    F, T = N_UE_FEATURES + 2 * M, model.n_cand * model.n_rbg
    S, MS = -(-T // 16) * 16, -(-M // 16) * 16           # row strides: tokens, RBGs
    body = [_Layer(m, f"B{i + 1}", int8) for i, m in enumerate(_linears(model.body))]
    head = _Layer(model.head, "HD", int8)
    none = [_Layer(m, f"N{i + 1}", int8) for i, m in enumerate(_linears(model.none))]
    first, rest = body[0], body[1:]
    W = first.O
    arrays = first.arrays(input_major=True) + "".join(x.arrays() for x in rest + [head] + none)
    wl = "(float)B1_W[{k} * %d + o]" % W

    if first.q:   # int8: a candidate's whole segment quantized at once (qs), the slot codes are constants
        inv1, zp1 = first.in_quant()
        slot = np.arange(U, dtype=np.float32) / np.float32(U) * (np.float32(1.0) / np.float32(first.t["in_scale"]))
        zp = int(first.t["in_zp"])
        arrays += _array("float", "SLOTQ", np.clip(np.rint(slot), ACT_QMIN - zp, ACT_QMAX - zp).astype(np.float32))
        feats = [f"qs[{j}]" for j in range(N_UE_FEATURES)] + ["SLOTQ[u]", "qdepth"]
        seg_q = f"        float *qs = gr + u * {F};\n        sx_quant(s, qs, {F}, {inv1}, {zp1});\n"
        rbg_x = ["xgq", "xrq"]
    else:
        feats = [f"s[{j}]" for j in range(N_UE_FEATURES)] + [f"(float)u / {_f32(U)}", "depth"]
        seg_q, rbg_x = "", ["xg", "xr"]
    cand = "\n".join(f"        {{ const float x = {xs}; for (int o = 0; o < {W}; ++o) au[o] += {wl.format(k=k)} * x; }}"
                     for k, xs in zip(_CAND, feats))
    rbg = "\n".join(f"    for (int o = 0; o < {W}; ++o) {{ const float w = {wl.format(k=k)}; "
                    f"for (int m = 0; m < {M}; ++m) c[o * {M} + m] += w * {xs}[m]; }}" for k, xs in zip(_RBG, rbg_x))
    # the first layer writes the body's output (H, float) if it is the only body layer, else the second
    # layer's input: its codes (Q) if that layer is int8, floats (H2) otherwise
    nxt = rest[0] if rest else None
    if nxt is None:
        l1_dst, l1_q = "H", None
    elif nxt.q:
        l1_dst, l1_q = "Q", nxt.in_quant()
    else:
        l1_dst, l1_q = "H2", None
    # int8 into int8: the dequantization and the next scale as one multiplier (B1_MQ), ReLU as the lower clamp
    if l1_q:
        lo, hi = nxt.code_range(True)
        arrays += _array("float", "B1_MQ", (first.t["in_scale"] * first.t["w_scale"]).float().numpy()
                         * (np.float32(1.0) / np.float32(nxt.t["in_scale"])))
        deq = " * B1_MQ[o]"
        mulm = "v = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(B1_MQ[o])), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);"
        relu_v = f"v = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps({hi}));"
        relu_s = f"v = nearbyintf(v); v = v < 0.0f ? 0.0f : v; v = v > {hi} ? {hi} : v;"
    else:
        deq = " * B1_M[o]" if first.q else ""
        mulm = "v = _mm512_mul_ps(v, _mm512_set1_ps(B1_M[o]));" if first.q else ""
        relu_v = "v = _mm512_max_ps(v, _mm512_setzero_ps());"
        relu_s = "v = v < 0.0f ? 0.0f : v;"
    # a candidate's g^ and rho on every RBG (contiguous in its input segment): the first layer's input codes
    # for int8, read in place for fp32
    gr_src = f"gr + u * {F} + {N_UE_FEATURES}" if first.q else f"in + u * {F} + {N_UE_FEATURES}"
    layers, cur = "", l1_dst
    for i, lay in enumerate(rest):
        last = i == len(rest) - 1
        after = rest[i + 1] if not last else None
        if last:                                          # body output: float H (+ the head's codes if int8)
            layers += lay.call(cur, "H", S, S, True, head, "QH")
            cur = "H"
        elif after.q:
            dst = "Q2" if cur != "Q2" else "Q"
            layers += lay.call(cur, "0", S, S, True, after, dst)
            cur = dst
        else:
            dst = "H3" if cur != "H3" else "H2"
            layers += lay.call(cur, dst, S, S, True)
            cur = dst
    head_in = "QH" if head.q else "H"
    head_codes = head.q and not rest                      # depth 1: quantize H for the head here
    none_code, src = "", "P"
    for i, lay in enumerate(none):
        if lay.q:
            inv, zp = lay.in_quant()
            none_code += f"    sx_quant({src}, QP, {lay.K * MS}, {inv}, {zp});\n"
        dst = "NV" if i == len(none) - 1 else ("P2" if src != "P2" else "P")
        none_code += lay.call("QP" if lay.q else src, dst, MS, MS, i < len(none) - 1)
        src = dst
    arrays += "".join(getattr(x, "extra", "") for x in rest + [head] + none)
    if first.q:
        inv1, zp1 = first.in_quant()
        xq_code = (f"    sx_quant(xg, xgq, {M}, {inv1}, {zp1});\n    sx_quant(xr, xrq, {M}, {inv1}, {zp1});")
        qdepth = f"    const float qdepth = sx_q1(depth, {inv1}, {zp1});"
    else:
        xq_code = qdepth = ""
    wmax = max([W, n_out] + [x.O for x in none])
    source = f"""{_KERNELS}
{arrays}
void {name}_forward(const float *restrict in, float *restrict out)
{{
    float a[{U * W}] CX_ALIGN, c[{W * M}] CX_ALIGN, xg[{M}], xr[{M}], xgq[{M}], xrq[{M}], gr[{U * F}];
    float H[{W * S}] CX_ALIGN, H2[{W * S}] CX_ALIGN, H3[{W * S}] CX_ALIGN, Q[{W * S}] CX_ALIGN, Q2[{W * S}] CX_ALIGN;
    float QH[{W * S}] CX_ALIGN, HO[{n_out * S}] CX_ALIGN, OQ[{max(n_out * S, wmax * MS)}] CX_ALIGN;
    float P[{wmax * MS}] CX_ALIGN, P2[{wmax * MS}] CX_ALIGN, QP[{wmax * MS}] CX_ALIGN, NV[{wmax * MS}] CX_ALIGN;
    int present[{U}];
    float n = 0.0f, dsum = 0.0f;
    (void)gr; (void)xgq; (void)xrq; (void)OQ; (void)H2; (void)H3; (void)Q; (void)Q2; (void)QH; (void)P2; (void)QP;
    for (int u = 0; u < {U}; ++u) {{                       /* present: any non-zero value (|x| summed > 0) */
        const float *s = in + u * {F};
        uint32_t any = 0;
        for (int k = 0; k < {F}; ++k) {{ uint32_t b; memcpy(&b, s + k, 4); any |= b & 0x7fffffffu; }}
        present[u] = any != 0;
        n += (float)present[u];
        dsum += s[2];
    }}
    if (n < 1.0f) n = 1.0f;
    const float depth = dsum * {_f32(M)} / {_f32(8.0 * M)};
{qdepth}
    for (int u = 0; u < {U}; ++u) {{                       /* a_u: bias + the candidate's seven features */
        const float *s = in + u * {F};
        float *au = a + u * {W};
        for (int o = 0; o < {W}; ++o) au[o] = B1_B[o];
{seg_q}{cand}
    }}
    for (int m = 0; m < {M}; ++m) {{ xg[m] = in[{N_UE_FEATURES} + m]; xr[m] = 0.0f; }}   /* the RBG's largest g^, mean rho */
    for (int u = 0; u < {U}; ++u) {{
        const float *g = in + u * {F} + {N_UE_FEATURES}, pu = (float)present[u];
        for (int m = 0; m < {M}; ++m) {{ xg[m] = g[m] > xg[m] ? g[m] : xg[m]; xr[m] += g[m + {M}] * pu; }}
    }}
    for (int m = 0; m < {M}; ++m) xr[m] = xr[m] / n;
{xq_code}
    memset(c, 0, sizeof c);
{rbg}
    for (int o = 0; o < {W}; ++o) memset({l1_dst} + o * {S} + {T}, 0, sizeof(float) * {S - T});   /* padding lanes */
    for (int u = 0; u < {U}; ++u) {{                       /* first layer + ReLU, token t = u * {M} + m */
        const float *au = a + u * {W}, *gu = {gr_src}, *ru = gu + {M};
        for (int o = 0; o < {W}; ++o) {{
            const float ao = au[o], wg = {wl.format(k=_G)}, wr = {wl.format(k=_RHO)};
            const float *cm = c + o * {M};
            float *h = {l1_dst} + o * {S} + u * {M};
#if SX_AVX512
            for (int m0 = 0; m0 < {M}; m0 += 16) {{
                const __mmask16 k = {M} - m0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << ({M} - m0)) - 1u);
                __m512 v = _mm512_add_ps(_mm512_set1_ps(ao), _mm512_maskz_loadu_ps(k, cm + m0));
                v = _mm512_fmadd_ps(_mm512_set1_ps(wg), _mm512_maskz_loadu_ps(k, gu + m0), v);
                v = _mm512_fmadd_ps(_mm512_set1_ps(wr), _mm512_maskz_loadu_ps(k, ru + m0), v);
                {mulm}
                {relu_v}
                _mm512_mask_storeu_ps(h + m0, k, v);
            }}
#else
            for (int m = 0; m < {M}; ++m) {{
                float v = (ao + cm[m] + wg * gu[m] + wr * ru[m]){deq};
                {relu_s}
                h[m] = v;
            }}
#endif
        }}
    }}
{layers}{"    sx_quant(H, QH, " + str(W * S) + ", " + ", ".join(head.in_quant()) + ");" + chr(10) if head_codes else ""}    for (int u = 0; u < {U}; ++u)                          /* absent candidates: zero hidden vector */
        if (!present[u])
            for (int o = 0; o < {W}; ++o) {{
                memset(H + o * {S} + u * {M}, 0, sizeof(float) * {M});
                memset(QH + o * {S} + u * {M}, 0, sizeof(float) * {M});   /* the code of 0 minus zp */
            }}
{head.call(head_in, "HO", S, S, False)}    for (int u = 0; u < {U}; ++u)
        for (int m = 0; m < {M}; ++m)
            for (int j = 0; j < {n_out}; ++j) out[(m * {U + 1} + u) * {n_out} + j] = HO[j * {S} + u * {M} + m];
    memset(P, 0, sizeof P);
    for (int o = 0; o < {W}; ++o) {{                       /* "none": max over the RBG's candidates */
        float *p = P + o * {MS};
        for (int u = 0; u < {U}; ++u) {{
            const float *h = H + o * {S} + u * {M};
            for (int m = 0; m < {M}; ++m) p[m] = h[m] > p[m] ? h[m] : p[m];
        }}
    }}
{none_code}    for (int m = 0; m < {M}; ++m)
        for (int j = 0; j < {n_out}; ++j) out[(m * {U + 1} + {U}) * {n_out} + j] = NV[j * {MS} + m];
}}
"""
    n_params = sum(p.numel() for p in model.parameters())
    mode = "int8" if int8 else "fp32"
    summary = (f"Shared1LDS {U} candidates x {M} RBGs, token MLP {len(body)} x {W}, n_out {n_out}, {mode} "
               "(tasks/scheduler/shared_c.py)")
    return {"source": source, "n_in": U * F, "n_out": M * (U + 1) * n_out, "n_params": n_params,
            "summary": summary}
