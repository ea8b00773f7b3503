// libFuzzer harness for the image loader: the shim's plain C API, exactly as the app calls it.
// Build and run: scripts/fuzz.sh (see fuzz/README.md).
#include "cvshim.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

// A 4-megapixel limit keeps one input's decode cheap enough for many executions per second;
// the check is the same code path as the default 50 MP limit.
static const int64_t kMaxPixels = 4 * 1000 * 1000;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cv_image *img = nullptr;
    cv_status s = cv_image_decode(data, size, kMaxPixels, &img);
    if (s == CV_OK) {
        if (!img) std::abort();  // success must give an image
        int32_t w = cv_image_width(img), h = cv_image_height(img);
        if (w <= 0 || h <= 0 || int64_t(w) * h > kMaxPixels) std::abort();  // the limit must hold after decoding too
        const uint8_t *px = cv_image_data(img);
        // Touch the first and last pixel so ASan checks the buffer really is w*h*3 bytes.
        volatile uint8_t sink = px[0] ^ px[size_t(w) * size_t(h) * 3 - 1];
        (void)sink;
        cv_image_free(img);
    } else {
        if (img) std::abort();  // failure must not hand out an image
        if (!cv_last_error() || !cv_last_error()[0]) std::abort();  // and must say why
    }
    return 0;
}
