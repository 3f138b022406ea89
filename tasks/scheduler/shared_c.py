"""C source of a ``Shared1LDS`` (fp32 or int8): the token gather, the shared MLP and the pooled "none" head.

``Shared1LDS.c_source`` calls :func:`shared_1lds_c_source`; ``compress.export.export_c`` wraps the result
in its header, kernels and harness, so the network exports, compiles and is timed like any C student
(``export: {c: true, c_int8: true}`` in a recipe, ``compress.export.runner.load_artifact`` closed-loop).

The forward is the PyTorch one (``tasks/scheduler/shared.py``) for one state, written so that the SIMD
lanes run over the 180 tokens (candidate u, RBG m), ``t = u * N_RBG + m``, not over the few hidden units:
a block of 16 tokens runs the whole token MLP and the head on registers (one vector per hidden unit, four
outputs at a time, the weights broadcast from memory), and only the body's output is stored
(feature-major, ``H[o][t]``) for the "none" pool. The per-pass work outside the blocks is vectorised over
candidates (the first layer's candidate part) and gathers (the tokens' g^ and rho). AVX-512 intrinsics
when the compiler targets them, a portable 16-lane version otherwise (same results up to float rounding).
Measured per TTI (8 passes, this machine, one run interleaving both versions; README "Deep schedulers"):
the previous version, one layer at a time through memory, took 6 - 10 us fp32 / 10 - 13 us int8 at width
8 and 390 - 590 us fp32 at width 64; this one 5.3 - 7.3 / 7.4 - 10.5 and 180 - 230 us. int8 stays slower
than fp32 at width 8: each layer's epilogue (rounding and clamping 16 activations per output) costs more
than its 8 multiply-adds.

* Per candidate: present (any non-zero value); the TTI's depth (sum d^ / 8); the slot u / abs(U). Per RBG:
  the largest g^ and the mean rho over present candidates.
* The first layer is factorised (an exact rewrite of the same sum): seven of a token's 11 features are the
  candidate's (the UE's five, slot, depth) and two the RBG's, so ``a_u = b + W_cand x_u`` and ``c_m =
  W_rbg x_m`` are computed once per pass; a block looks up each lane's a_u and c_m (a vector permute of
  the small tables) and adds ``w_g g^_um + w_rho rho_um``.
* The body's output is zeroed for absent candidates (the model multiplies by ``present``); the head runs on
  every token; "none" on RBG m is the ``none`` MLP of the element-wise max over the RBG's candidates.
* int8 (a QAT-prepared model): weights are the QAT int8 codes (``int8_t`` arrays, widened to float once
  per pass), activations are quantized with each layer's QAT input scale / zero-point (``zp + nearbyint(x
  / scale)``, clamped, as the fake-quant does), and a layer is ``y = m_o (b_o + sum_k w_ok (q_k - zp))``
  with the int32 bias and one fp32 multiplier per output, as in ``compress.export``'s int8 kernel. A
  layer feeding a quantized layer writes its codes (minus zp) directly: the dequantization, the bias and
  the next scale folded into one multiply-add, ReLU as the lower clamp. The integer products are summed
  in fp32 lanes, exact while ``K x 127 x 255 < 2^24`` (checked at export: up to 518 inputs), so these are
  the integers of an int32 accumulator at the fp32 kernel's speed (an int32 lane multiply is slower on
  x86, and VPDPBUSD wants 4 inputs per lane, i.e. a token-major layout). Equal to the fake-quant model up
  to float rounding (an activation within an ulp of a rounding boundary may move by one step).
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

# 16-lane vectors: AVX-512 or a portable struct (every operation a 16-iteration loop)
_KERNELS = r"""
#if defined(__AVX512F__)
#include <immintrin.h>
#define SX_AVX512 1
typedef __m512 sx_v;
typedef __m512i sx_i;
#define sx_ld(p) _mm512_load_ps(p)
#define sx_ldu(p) _mm512_loadu_ps(p)
#define sx_ldn(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), p)
#define sx_st(p, v) _mm512_store_ps(p, v)
#define sx_set(x) _mm512_set1_ps(x)
#define sx_add(a, b) _mm512_add_ps(a, b)
#define sx_mul(a, b) _mm512_mul_ps(a, b)
#define sx_fma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define sx_max(a, b) _mm512_max_ps(a, b)
#define sx_min(a, b) _mm512_min_ps(a, b)
#define sx_rnd(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define sx_ldi(p) _mm512_load_si512((const void *)(p))
#define sx_look16(i, t) _mm512_permutexvar_ps(i, _mm512_load_ps(t))
#define sx_look32(i, t) _mm512_permutex2var_ps(_mm512_load_ps(t), i, _mm512_load_ps((t) + 16))
#define sx_lookn(i, t) _mm512_i32gather_ps(i, t, 4)
#define sx_gather(i, t) _mm512_i32gather_ps(i, t, 4)
/* max(a, 0) on the lanes whose pm > 0, else 0 (the body's ReLU and the absent-candidate mask in one) */
#define sx_relu_mask(a, pm) _mm512_maskz_max_ps(_mm512_cmp_ps_mask(pm, _mm512_setzero_ps(), _CMP_GT_OQ), a, _mm512_setzero_ps())
#else
#define SX_AVX512 0
typedef struct { float l[16]; } sx_v;
typedef struct { int l[16]; } sx_i;
#define SX_MAP(EXPR) sx_v r; for (int l = 0; l < 16; ++l) r.l[l] = (EXPR); return r
CX_INLINE sx_v sx_ld(const float *p) { SX_MAP(p[l]); }
CX_INLINE sx_v sx_ldu(const float *p) { SX_MAP(p[l]); }
CX_INLINE sx_v sx_ldn(const float *p, const int n) { SX_MAP(l < n ? p[l] : 0.0f); }
CX_INLINE void sx_st(float *p, const sx_v v) { for (int l = 0; l < 16; ++l) p[l] = v.l[l]; }
CX_INLINE sx_v sx_set(const float x) { SX_MAP(x); }
CX_INLINE sx_v sx_add(const sx_v a, const sx_v b) { SX_MAP(a.l[l] + b.l[l]); }
CX_INLINE sx_v sx_mul(const sx_v a, const sx_v b) { SX_MAP(a.l[l] * b.l[l]); }
CX_INLINE sx_v sx_fma(const sx_v a, const sx_v b, const sx_v c) { SX_MAP(a.l[l] * b.l[l] + c.l[l]); }
CX_INLINE sx_v sx_max(const sx_v a, const sx_v b) { SX_MAP(a.l[l] > b.l[l] ? a.l[l] : b.l[l]); }
CX_INLINE sx_v sx_min(const sx_v a, const sx_v b) { SX_MAP(a.l[l] < b.l[l] ? a.l[l] : b.l[l]); }
CX_INLINE sx_v sx_rnd(const sx_v a) { SX_MAP(nearbyintf(a.l[l])); }
CX_INLINE sx_i sx_ldi(const int *p) { sx_i r; for (int l = 0; l < 16; ++l) r.l[l] = p[l]; return r; }
CX_INLINE sx_v sx_look(const sx_i i, const float *t) { SX_MAP(t[i.l[l]]); }
#define sx_look16 sx_look
#define sx_look32 sx_look
#define sx_lookn sx_look
#define sx_gather sx_look
CX_INLINE sx_v sx_relu_mask(const sx_v a, const sx_v pm) { SX_MAP((a.l[l] > 0.0f ? a.l[l] : 0.0f) * pm.l[l]); }
#endif

/* x (n floats) -> clamp(nearbyint(x * inv), lo, hi): a layer's input codes minus its zero-point */
CX_INLINE void sx_quant(const float *restrict x, float *restrict q, const int n, const float inv,
                        const float lo, const float hi)
{
    int i = 0;
#if SX_AVX512
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(q + i, sx_min(sx_max(sx_rnd(sx_mul(_mm512_loadu_ps(x + i), sx_set(inv))), sx_set(lo)), sx_set(hi)));
#endif
    for (; i < n; ++i) {
        float v = nearbyintf(x[i] * inv);
        v = v < lo ? lo : v;
        q[i] = v > hi ? hi : v;
    }
}
"""


def _linears(seq) -> list:
    return [m for m in seq if hasattr(m, "in_features")]


def _pad(n: int) -> int:
    return -(-n // 16) * 16


class _Layer:
    """One Linear: its arrays and the C that runs it on a block's registers (one vector per unit)."""

    def __init__(self, m, prefix: str, int8: bool):
        self.m, self.p, self.K, self.O = m, prefix, m.in_features, m.out_features
        self.q = bool(int8 and isinstance(m, QATLinear))
        self.folded = False
        if self.q:
            if self.K * 127 * 255 >= _EXACT:
                raise UserError(f"Shared1LDS C export, layer {prefix}: {self.K} inputs are too many for the exact "
                                "fp32 accumulation of int8 products (at most 518)")
            self.t = m.quantized_tensors()

    def _bias(self) -> np.ndarray:
        b = (self.t["b_int32"] if self.q else self.m.bias)
        if b is None:
            return np.zeros(self.O, np.float32)
        return b.detach().numpy().astype(np.float32)

    def _mult(self) -> np.ndarray:
        return (self.t["in_scale"] * self.t["w_scale"]).float().numpy().astype(np.float32)

    def arrays(self, nxt: "_Layer | None") -> str:
        """W ([O][K], float or int8 codes) and fp32: B; int8: M and BM = B M with B the int32 bias and M the
        dequantization, or - folded into the next layer's codes - M / next scale and B M / next scale."""
        p = self.p
        if not self.q:
            return _array("float", f"{p}_W", self.m.weight.detach().float().numpy()) + _array("float", f"{p}_B", self._bias())
        m = self._mult()
        if self.folded:
            m = (m * (np.float32(1.0) / np.float32(nxt.t["in_scale"]))).astype(np.float32)
        return (_array("int8_t", f"{p}_W", self.t["w_int8"].numpy()) + _array("float", f"{p}_M", m)
                + _array("float", f"{p}_BM", (self._bias() * m).astype(np.float32)))

    def widen(self) -> str:
        """int8 weights to float once per pass (``<p>_WF``); fp32 layers read ``<p>_W`` itself."""
        if not self.q:
            return f"    const float *{self.p}_WF = {self.p}_W;\n"
        n = self.K * self.O
        return (f"    float {self.p}_WF[{n}] CX_ALIGN;\n"
                f"    for (int i = 0; i < {n}; ++i) {self.p}_WF[i] = (float){self.p}_W[i];\n")

    def inv(self) -> str:
        """1 / the scale of this layer's input fake-quant (a C literal)."""
        return _f32(np.float32(1.0) / np.float32(self.t["in_scale"]))

    def code_range(self, nonneg: bool) -> tuple[str, str]:
        """[lo, hi] of its input codes minus the zero-point; lo = 0 for a non-negative input (QMIN - zp <= 0)."""
        zp = int(self.t["in_zp"])
        return _f32(0 if nonneg else ACT_QMIN - zp), _f32(ACT_QMAX - zp)

    def codes(self, v: str, nonneg: bool) -> str:
        """C expression: this layer's input codes (minus zp) of the float vector ``v``."""
        lo, hi = self.code_range(nonneg)
        r = f"sx_rnd(sx_mul({v}, sx_set({self.inv()})))"
        return f"sx_min({r if nonneg else f'sx_max({r}, sx_set({lo}))'}, sx_set({hi}))"

    def epilogue(self, acc: str, relu: bool, nxt: "_Layer | None", mask: str | None = None,
                 keep: str | None = None, o: str = "o") -> list[str]:
        """Lines turning the accumulator ``acc`` of output ``o`` (bias included for fp32) into the layer's
        output in ``acc``: floats, or - if ``nxt`` is quantized - its input codes (minus zp). ``mask``: the
        present vector (zero the output of absent tokens); ``keep``: also store the float output there."""
        q_next = nxt is not None and nxt.q
        self.folded = self.q and q_next and mask is None and keep is None
        if self.folded:                      # straight to the next layer's codes; ReLU = the lower clamp 0
            lo, hi = nxt.code_range(relu)
            return [f"{acc} = sx_rnd(sx_fma({acc}, sx_set({self.p}_M[{o}]), sx_set({self.p}_BM[{o}])));",
                    f"{acc} = sx_min(sx_max({acc}, sx_set({lo})), sx_set({hi}));"]
        lines = [f"{acc} = sx_fma({acc}, sx_set({self.p}_M[{o}]), sx_set({self.p}_BM[{o}]));"] if self.q else []
        if mask:
            lines.append(f"{acc} = sx_relu_mask({acc}, {mask});" if relu else f"{acc} = sx_mul({acc}, {mask});")
        elif relu:
            lines.append(f"{acc} = sx_max({acc}, sx_set(0.0f));")
        if keep:
            lines.append(f"sx_st({keep}, {acc});")
        if q_next:
            lines.append(f"{acc} = {nxt.codes(acc, relu)};")
        if self.q and self.t["out_scale"] is not None:   # QAT's output fake-quant (the model's last layers)
            so, zo = np.float32(self.t["out_scale"]), int(self.t["out_zp"])
            lines += [f"{acc} = sx_min(sx_max(sx_rnd(sx_mul({acc}, sx_set({_f32(np.float32(1.0) / so)}))), "
                      f"sx_set({_f32(ACT_QMIN - zo)})), sx_set({_f32(ACT_QMAX - zo)}));",
                      f"{acc} = sx_mul({acc}, sx_set({_f32(so)}));"]
        return lines

    def block(self, x: str, y: str, relu: bool, nxt: "_Layer | None", mask: str | None = None,
              keep: str | None = None) -> str:
        """``y[o]`` for the 16 lanes of a block from ``x[k]``: four outputs at a time when they divide (each
        input vector read once for four accumulators; the weights are broadcast from memory)."""
        nb = 4 if self.O % 4 == 0 else 1
        outs = [f"o + {j}" if j else "o" for j in range(nb)]
        init = [("sx_set(0.0f)" if self.q else f"sx_set({self.p}_B[{o}])") for o in outs]
        lines = [f"for (int o = 0; o < {self.O}; o += {nb}) {{",
                 *(f"    sx_v a{j} = {init[j]};" for j in range(nb)),
                 f"    for (int k = 0; k < {self.K}; ++k) {{",
                 f"        const sx_v xk = {x}[k];",
                 *(f"        a{j} = sx_fma(sx_set({self.p}_WF[({o}) * {self.K} + k]), xk, a{j});" for j, o in enumerate(outs)),
                 "    }"]
        for j, o in enumerate(outs):
            k = keep.replace("o *", f"({o}) *") if keep else None
            lines += ["    " + ln for ln in self.epilogue(f"a{j}", relu, nxt, mask, k, o)]
            lines.append(f"    {y}[{o}] = a{j};")
        lines.append("}")
        return "".join(f"        {ln}\n" for ln in lines)


def _lookup(n: int) -> tuple[str, int]:
    """(the C lookup of each lane's entry in a table of n, the table's row length)."""
    if n <= 16:
        return "sx_look16", 16
    if n <= 32:
        return "sx_look32", 32
    return "sx_lookn", _pad(n)


def shared_1lds_c_source(model, name: str, int8: bool) -> dict:
    """``{"source", "n_in", "n_out", "n_params", "summary"}`` for ``compress.export.export_c``."""
    U, M, n_out = model.n_cand, model.n_rbg, model.n_out
    F, T = N_UE_FEATURES + 2 * M, model.n_cand * model.n_rbg
    S, MS = _pad(T), _pad(M)                              # row strides: tokens, RBGs
    body = [_Layer(m, f"B{i + 1}", int8) for i, m in enumerate(_linears(model.body))]
    head = _Layer(model.head, "HD", int8)
    none = [_Layer(m, f"N{i + 1}", int8) for i, m in enumerate(_linears(model.none))]
    first, rest = body[0], body[1:]
    W, KT = first.O, first.K
    look_u, UP = _lookup(U)
    look_m, MP = _lookup(M)

    # ---- a block of 16 tokens: layer 1 from the tables, the rest of the body and the head on registers
    lines = [f"sx_v v = sx_add({look_u}(ui, AT + o * {UP}), {look_m}(mi, CT + o * {MP}));",
             f"v = sx_fma(sx_set(B1_WF[o * {KT} + {_G}]), g, v);",
             f"v = sx_fma(sx_set(B1_WF[o * {KT} + {_RHO}]), r, v);"]
    nxt1 = rest[0] if rest else head
    if rest:
        lines += first.epilogue("v", True, nxt1)
    else:                                                 # depth 1: the body's output
        lines += first.epilogue("v", True, head, mask="pm", keep=f"H + o * {S} + t0")
    blk = f"        sx_v X1[{W}];\n        for (int o = 0; o < {W}; ++o) {{\n"
    blk += "".join(f"            {ln}\n" for ln in lines) + "            X1[o] = v;\n        }\n"
    cur = "X1"
    for i, lay in enumerate(rest):
        last = i == len(rest) - 1
        dst = f"X{i + 2}"
        blk += f"        sx_v {dst}[{W}];\n"
        if last:
            blk += lay.block(cur, dst, True, head, mask="pm", keep=f"H + o * {S} + t0")
        else:
            blk += lay.block(cur, dst, True, rest[i + 1])
        cur = dst
    blk += f"        sx_v Y[{n_out}];\n" + head.block(cur, "Y", False, None)
    blk += "".join(f"        sx_st(HO + {j * S} + t0, Y[{j}]);\n" for j in range(n_out))

    # ---- "none": the MLP of the pooled hidden vector, 16 RBGs at a time
    n0 = none[0]
    load_p = f"sx_ld(P + k * {MS} + m0)"
    nb = (f"        sx_v Z0[{W}];\n"
          f"        for (int k = 0; k < {W}; ++k) Z0[k] = {n0.codes(load_p, True) if n0.q else load_p};\n")
    cur = "Z0"
    for i, lay in enumerate(none):
        dst = f"Z{i + 1}"
        nb += f"        sx_v {dst}[{lay.O}];\n"
        nb += lay.block(cur, dst, i < len(none) - 1, none[i + 1] if i < len(none) - 1 else None)
        cur = dst
    nb += "".join(f"        sx_st(NV + {j * MS} + m0, {cur}[{j}]);\n" for j in range(n_out))

    # ---- arrays (after the C: each layer knows whether its epilogue is folded)
    chain = body + [head] + none
    succ = (rest + [head])[:len(body)] + [None] + none[1:] + [None]   # the layer each one feeds
    arrays = "".join(lay.arrays(nx) for lay, nx in zip(chain, succ))
    tok = np.arange(S)
    arrays += _array("int", "SX_UI", np.where(tok < T, tok // M, 0).astype(np.int32))
    arrays += _array("int", "SX_MI", np.where(tok < T, tok % M, 0).astype(np.int32))
    arrays += _array("int", "SX_TG", np.where(tok < T, (tok // M) * F + tok % M, 0).astype(np.int32))
    cu = np.arange(UP)
    arrays += _array("int", "SX_CU", np.where(cu < U, cu * F, 0).astype(np.int32))
    slot = np.where(cu < U, cu, 0).astype(np.float32) / np.float32(U)

    # ---- first-layer inputs: the state itself (fp32) or its codes for the first layer (int8)
    if first.q:
        lo1, hi1 = first.code_range(False)
        inv1 = first.inv()
        slot = np.clip(np.rint(slot * (np.float32(1.0) / np.float32(first.t["in_scale"]))),
                       ACT_QMIN - int(first.t["in_zp"]), ACT_QMAX - int(first.t["in_zp"]))
        quant_in = (f"    sx_quant(in, QI, {U * F}, {inv1}, {lo1}, {hi1});\n"
                    f"    sx_quant(&depth, &xd, 1, {inv1}, {lo1}, {hi1});\n"
                    f"    sx_quant(xg, xg + {MP}, {M}, {inv1}, {lo1}, {hi1});\n"
                    f"    sx_quant(xr, xr + {MP}, {M}, {inv1}, {lo1}, {hi1});\n")
        src, xgs, xrs = "QI", f"(xg + {MP})", f"(xr + {MP})"
    else:
        quant_in, src, xgs, xrs = "    xd = depth;\n", "in", "xg", "xr"
    arrays += _array("float", "SX_SLOT", slot.astype(np.float32))
    cand_w = [f"B1_WF[o * {KT} + {k}]" for k in _CAND]
    cand_x = [f"sx_gather(cu, {src} + {j})" for j in range(N_UE_FEATURES)] + ["sx_ld(SX_SLOT + u0)", "sx_set(xd)"]
    cand = "".join(f"            acc = sx_fma(sx_set({w}), f{j}, acc);\n" for j, w in enumerate(cand_w))
    feats = "".join(f"        const sx_v f{j} = {x};\n" for j, x in enumerate(cand_x))
    widen = "".join(lay.widen() for lay in chain)
    # the pool: a candidate's M hidden values are one row of H (16 lanes per vector, the last one partial)
    vecs = [(j * 16, min(16, M - j * 16)) for j in range(MS // 16)]
    rd = lambda j0, n: f"sx_ldu(h + {j0})" if n == 16 else f"sx_ldn(h + {j0}, {n})"
    pool = ("".join(f"        sx_v p{j} = sx_set(0.0f);\n" for j in range(len(vecs)))
            + f"        for (int u = 0; u < {U}; ++u) {{\n            const float *h = H + o * {S} + u * {M};\n"
            + "".join(f"            p{j} = sx_max(p{j}, {rd(j0, n)});\n" for j, (j0, n) in enumerate(vecs))
            + "        }\n" + "".join(f"        sx_st(P + o * {MS} + {j0}, p{j});\n" for j, (j0, _) in enumerate(vecs)))
    source = f"""{_KERNELS}
{arrays}
void {name}_forward(const float *restrict in, float *restrict out)
{{
    float AT[{W * UP}] CX_ALIGN, CT[{W * MP}] CX_ALIGN, PRES[{UP}] CX_ALIGN, xg[{2 * MP}], xr[{2 * MP}];
    float QI[{U * F}] CX_ALIGN, H[{W * S}] CX_ALIGN, HO[{n_out * S}] CX_ALIGN, P[{W * MS}] CX_ALIGN, NV[{n_out * MS}] CX_ALIGN;
    float n = 0.0f, dsum = 0.0f, xd;
    (void)QI;
{widen}    memset(PRES, 0, sizeof PRES);
    for (int u = 0; u < {U}; ++u) {{                       /* present: any non-zero value (|x| summed > 0) */
        const float *s = in + u * {F};
        uint32_t any = 0;
        for (int k = 0; k < {F}; ++k) {{ uint32_t b; memcpy(&b, s + k, 4); any |= b & 0x7fffffffu; }}
        PRES[u] = any != 0 ? 1.0f : 0.0f;
        n += PRES[u];
        dsum += s[2];
    }}
    if (n < 1.0f) n = 1.0f;
    const float depth = dsum * {_f32(M)} / {_f32(8.0 * M)};
    for (int m = 0; m < {M}; ++m) {{ xg[m] = in[{N_UE_FEATURES} + m]; xr[m] = 0.0f; }}   /* the RBG's largest g^, mean rho */
    for (int u = 0; u < {U}; ++u) {{
        const float *g = in + u * {F} + {N_UE_FEATURES}, pu = PRES[u];
        for (int m = 0; m < {M}; ++m) {{ xg[m] = g[m] > xg[m] ? g[m] : xg[m]; xr[m] += g[m + {M}] * pu; }}
    }}
    for (int m = 0; m < {M}; ++m) xr[m] = xr[m] / n;
{quant_in}    for (int u0 = 0; u0 < {UP}; u0 += 16) {{                /* a_u = b + W_cand x_u, 16 candidates at a time */
        const sx_i cu = sx_ldi(SX_CU + u0);
{feats}        for (int o = 0; o < {W}; ++o) {{
            sx_v acc = sx_set({'0.0f' if first.q else 'B1_B[o]'});   /* int8: the bias comes in the epilogue */
{cand}            sx_st(AT + o * {UP} + u0, acc);
        }}
    }}
    memset(CT, 0, sizeof CT);                              /* c_m = W_rbg x_m */
    for (int o = 0; o < {W}; ++o) {{
        const float wg = B1_WF[o * {KT} + {_RBG[0]}], wr = B1_WF[o * {KT} + {_RBG[1]}];
        for (int m = 0; m < {M}; ++m) CT[o * {MP} + m] = wg * {xgs}[m] + wr * {xrs}[m];
    }}
    for (int t0 = 0; t0 < {S}; t0 += 16) {{                /* 16 tokens: body (on registers) and head */
        const sx_i ui = sx_ldi(SX_UI + t0), mi = sx_ldi(SX_MI + t0), tg = sx_ldi(SX_TG + t0);
        const sx_v g = sx_gather(tg, {src} + {N_UE_FEATURES}), r = sx_gather(tg, {src} + {N_UE_FEATURES + M});
        const sx_v pm = {look_u}(ui, PRES);
{blk}    }}
    for (int u = 0; u < {U}; ++u)
        for (int m = 0; m < {M}; ++m)
            for (int j = 0; j < {n_out}; ++j) out[(m * {U + 1} + u) * {n_out} + j] = HO[j * {S} + u * {M} + m];
    for (int o = 0; o < {W}; ++o) {{                       /* "none": max over the RBG's candidates */
{pool}    }}
    for (int m0 = 0; m0 < {MS}; m0 += 16) {{
{nb}    }}
    for (int m = 0; m < {M}; ++m)
        for (int j = 0; j < {n_out}; ++j) out[(m * {U + 1} + {U}) * {n_out} + j] = NV[j * {MS} + m];
}}
"""
    n_params = sum(p.numel() for p in model.parameters())
    mode = "int8" if int8 else "fp32"
    summary = (f"Shared1LDS {U} candidates x {M} RBGs, token MLP {len(body)} x {W}, n_out {n_out}, {mode} "
               "(tasks/scheduler/shared_c.py)")
    return {"source": source, "n_in": U * F, "n_out": M * (U + 1) * n_out, "n_params": n_params,
            "summary": summary}
