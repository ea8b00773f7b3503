#include "simd_kernels.h"
