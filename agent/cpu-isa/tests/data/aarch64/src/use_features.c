/* Executes one instruction of every feature the compile options enable (by ACLE macro), so a
   CPU without one of them dies with SIGILL. Built -static for qemu-aarch64 by tests/aarch64_qemu.rs. */
#include <arm_neon.h>
#include <stdint.h>
#include <stdio.h>
#ifdef __ARM_FEATURE_SVE
#include <arm_sve.h>
#endif
#if defined(__ARM_FEATURE_CRC32) || defined(__ARM_FEATURE_JCVT)
#include <arm_acle.h>
#endif

volatile uint64_t sink;
volatile uint64_t counter;
volatile uint32_t in32 = 3;
volatile double ind = 2.5;

int main(void) {
  uint8x16_t b = vdupq_n_u8((uint8_t)in32);
  uint32x4_t w = vdupq_n_u32(in32);
  float32x4_t f = vdupq_n_f32((float)in32);
#ifdef __ARM_FEATURE_CRC32
  sink += __crc32cd(in32, sink);
#endif
#ifdef __ARM_FEATURE_ATOMICS
  sink += __atomic_fetch_add(&counter, in32, __ATOMIC_SEQ_CST); /* ldaddal, outline atomics off */
#endif
#ifdef __ARM_FEATURE_QRDMX
  int16x8_t h = vdupq_n_s16((int16_t)in32);
  sink += vgetq_lane_s16(vqrdmlahq_s16(h, h, h), 0);
#endif
#ifdef __ARM_FEATURE_AES
  sink += vgetq_lane_u8(vaeseq_u8(b, b), 0);
#endif
#ifdef __ARM_FEATURE_SHA2
  sink += vgetq_lane_u32(vsha256hq_u32(w, w, w), 0);
#endif
#ifdef __ARM_FEATURE_SHA3
  sink += vgetq_lane_u8(veor3q_u8(b, b, b), 0);
#endif
#ifdef __ARM_FEATURE_SM4
  sink += vgetq_lane_u32(vsm4eq_u32(w, w), 0);
#endif
#ifdef __ARM_FEATURE_DOTPROD
  sink += vgetq_lane_u32(vdotq_u32(w, b, b), 0);
#endif
#ifdef __ARM_FEATURE_FP16_VECTOR_ARITHMETIC
  float16x8_t g = vdupq_n_f16((float16_t)in32);
  sink += (uint64_t)vgetq_lane_f16(vaddq_f16(g, g), 0);
#endif
#ifdef __ARM_FEATURE_FP16_FML
  sink += (uint64_t)vgetq_lane_f32(vfmlalq_low_f16(f, g, g), 0);
#endif
#ifdef __ARM_FEATURE_COMPLEX
  sink += (uint64_t)vgetq_lane_f32(vcaddq_rot90_f32(f, f), 1);
#endif
#ifdef __ARM_FEATURE_JCVT
  sink += (uint64_t)__jcvt(ind);
#endif
#ifdef __ARM_FEATURE_FRINT
  sink += (uint64_t)vgetq_lane_f32(vrnd32xq_f32(f), 0);
#endif
#ifdef __ARM_FEATURE_MATMUL_INT8
  int8x16_t s8 = vdupq_n_s8((int8_t)in32);
  sink += vgetq_lane_s32(vmmlaq_s32(vdupq_n_s32(0), s8, s8), 0);
#endif
#ifdef __ARM_FEATURE_BF16_VECTOR_ARITHMETIC
  bfloat16x8_t bf = vreinterpretq_bf16_u32(w);
  sink += (uint64_t)vgetq_lane_f32(vbfdotq_f32(f, bf, bf), 0);
#endif
#ifdef __ARM_FEATURE_SVE
  svbool_t all = svptrue_b32();
  svuint32_t v = svdup_u32(in32);
  sink += svcntb() + svaddv_u32(all, svadd_u32_x(all, v, v));
#endif
#ifdef __ARM_FEATURE_SVE2
  sink += svaddv_u32(all, svhadd_u32_x(all, v, v));
#endif
#ifdef __ARM_FEATURE_SVE2_BITPERM
  sink += svaddv_u32(all, svbdep_u32(v, v));
#endif
#ifdef __ARM_FEATURE_SVE2_AES
  sink += svaddv_u8(svptrue_b8(), svaese_u8(svdup_u8(in32), svdup_u8(in32)));
#endif
#ifdef __ARM_FEATURE_SVE2_SM4
  sink += svaddv_u32(all, svsm4e_u32(v, v));
#endif
#ifdef __ARM_FEATURE_SVE2_SHA3
  sink += svaddv_u64(svptrue_b64(), svrax1_u64(svdup_u64(in32), svdup_u64(in32)));
#endif
#ifdef __ARM_FEATURE_SVE_MATMUL_INT8
  sink += svaddv_s32(all, svmmla_s32(svdup_s32(0), svdup_s8(in32), svdup_s8(in32)));
#endif
#ifdef __ARM_FEATURE_BF16_SCALAR_ARITHMETIC
#ifdef __ARM_FEATURE_SVE
  sink += (uint64_t)svaddv_f32(all, svbfdot_f32(svdup_f32(1), svreinterpret_bf16_u32(v), svreinterpret_bf16_u32(v)));
#endif
#endif
  printf("%llu\n", (unsigned long long)sink);
  return 0;
}
