// Distance kernels for FaceMatch, chosen at run time by CPU features.
#ifndef SIMD_KERNELS_H
#define SIMD_KERNELS_H
#endif
