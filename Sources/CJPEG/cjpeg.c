/* cjpeg.c: see include/cjpeg.h. libjpeg's errors longjmp back here; its warnings are counted. */
#include "cjpeg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

static _Thread_local char last_error[JMSG_LENGTH_MAX + 64];

const char *cjpeg_last_error(void) { return last_error; }

static int fail(int code, const char *message) {
    snprintf(last_error, sizeof last_error, "%s", message);
    return code;
}

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    uint32_t warnings;
} error_mgr;

static void on_error(j_common_ptr info) {
    error_mgr *err = (error_mgr *)info->err;
    char message[JMSG_LENGTH_MAX];
    err->base.format_message(info, message);
    snprintf(last_error, sizeof last_error, "JPEG: %s", message);
    longjmp(err->escape, 1);
}

static void on_message(j_common_ptr info, int level) {
    /* level -1: a warning (corrupt data decoded past); higher levels are trace messages. */
    if (level < 0) ((error_mgr *)info->err)->warnings++;
}

/* Sets up a decompressor on the buffer and reads the header; the caller has called setjmp. */
static void begin(struct jpeg_decompress_struct *info, error_mgr *err, const uint8_t *jpeg, size_t size) {
    info->err = jpeg_std_error(&err->base);
    err->base.error_exit = on_error;
    err->base.emit_message = on_message;
    err->warnings = 0;
    jpeg_create_decompress(info);
    jpeg_mem_src(info, jpeg, (unsigned long)size);
    jpeg_read_header(info, TRUE);
}

int cjpeg_size(const uint8_t *jpeg, size_t size, int32_t *width, int32_t *height) {
    last_error[0] = 0;
    if (!jpeg || size == 0 || !width || !height) return fail(EINVAL, "no JPEG data");
    struct jpeg_decompress_struct info;
    error_mgr err;
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&info);
        return EBADMSG;
    }
    begin(&info, &err, jpeg, size);
    *width = (int32_t)info.image_width;
    *height = (int32_t)info.image_height;
    jpeg_destroy_decompress(&info);
    return 0;
}

int cjpeg_decode_bgr(const uint8_t *jpeg, size_t size, int32_t width, int32_t height, uint8_t *dst, size_t dst_size,
                     uint32_t *warnings) {
    last_error[0] = 0;
    if (!jpeg || size == 0 || !dst || width <= 0 || height <= 0) return fail(EINVAL, "no JPEG data or no picture size");
    if (dst_size < (size_t)width * (size_t)height * 3) return fail(EINVAL, "destination too small");
    struct jpeg_decompress_struct info;
    error_mgr err;
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&info);
        return EBADMSG;
    }
    begin(&info, &err, jpeg, size);
    if ((int32_t)info.image_width != width || (int32_t)info.image_height != height) {
        char message[96];
        snprintf(message, sizeof message, "JPEG: the picture is %ux%u, not %dx%d", info.image_width, info.image_height,
                 width, height);
        jpeg_destroy_decompress(&info);
        return fail(EBADMSG, message);
    }
    info.out_color_space = JCS_EXT_BGR;
    jpeg_start_decompress(&info);
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = dst + (size_t)info.output_scanline * (size_t)width * 3;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    if (warnings) *warnings = err.warnings;
    jpeg_destroy_decompress(&info);
    return 0;
}

int cjpeg_grey_thumbnail(const uint8_t *jpeg, size_t size, int32_t thumb_width, int32_t thumb_height, uint8_t *dst,
                         uint32_t *warnings) {
    last_error[0] = 0;
    if (!jpeg || size == 0 || !dst || thumb_width <= 0 || thumb_height <= 0)
        return fail(EINVAL, "no JPEG data or no thumbnail size");
    struct jpeg_decompress_struct info;
    error_mgr err;
    uint8_t *volatile grey = NULL;
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&info);
        free(grey);
        return EBADMSG;
    }
    begin(&info, &err, jpeg, size);
    if ((int32_t)info.image_width < thumb_width || (int32_t)info.image_height < thumb_height) {
        jpeg_destroy_decompress(&info);
        return fail(EINVAL, "the thumbnail is larger than the picture");
    }
    /* The coarsest scale whose picture still covers the thumbnail: at 1/8 each pixel is a block's DC. */
    unsigned denom = 8;
    while (denom > 1 && ((info.image_width + denom - 1) / denom < (unsigned)thumb_width ||
                         (info.image_height + denom - 1) / denom < (unsigned)thumb_height))
        denom /= 2;
    info.scale_num = 1;
    info.scale_denom = denom;
    info.out_color_space = JCS_GRAYSCALE;
    jpeg_start_decompress(&info);
    const size_t w = info.output_width, h = info.output_height;
    grey = malloc(w * h);
    if (!grey) {
        jpeg_destroy_decompress(&info);
        return fail(ENOMEM, "out of memory");
    }
    while (info.output_scanline < h) {
        JSAMPROW row = grey + (size_t)info.output_scanline * w;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    if (warnings) *warnings = err.warnings;
    jpeg_destroy_decompress(&info);
    /* Block means down to the thumbnail (each output pixel the mean of the source pixels that fall in it). */
    for (int32_t ty = 0; ty < thumb_height; ty++) {
        size_t y0 = (size_t)ty * h / (size_t)thumb_height, y1 = (size_t)(ty + 1) * h / (size_t)thumb_height;
        if (y1 <= y0) y1 = y0 + 1;
        for (int32_t tx = 0; tx < thumb_width; tx++) {
            size_t x0 = (size_t)tx * w / (size_t)thumb_width, x1 = (size_t)(tx + 1) * w / (size_t)thumb_width;
            if (x1 <= x0) x1 = x0 + 1;
            uint32_t sum = 0;
            for (size_t y = y0; y < y1; y++)
                for (size_t x = x0; x < x1; x++) sum += grey[y * w + x];
            uint32_t n = (uint32_t)((y1 - y0) * (x1 - x0));
            dst[(size_t)ty * (size_t)thumb_width + (size_t)tx] = (uint8_t)((sum + n / 2) / n);
        }
    }
    free(grey);
    return 0;
}
