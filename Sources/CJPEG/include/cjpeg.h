/*
 * cjpeg.h: JPEG frames (a USB camera's MJPEG buffers, the packets of an MJPEG video) decoded by
 * libjpeg-turbo, for the capture stage: the whole picture as BGR, or only a small grey thumbnail
 * decoded at 1/2, 1/4 or 1/8 scale (the DCT's own averages: an 8x8 block's mean is its DC
 * coefficient), which costs the entropy decoding and little else. An idle gate looks at every frame's
 * thumbnail and decodes the whole picture only for the frames its detector runs on.
 *
 * Rules (DESIGN.md): plain C, a status code per call (0, EINVAL for bad arguments, EBADMSG for data
 * libjpeg cannot decode) and a thread-local message (cjpeg_last_error). libjpeg's warnings (corrupt
 * data it decoded past, filling the rest in) are counted in *warnings, never printed.
 */
#ifndef CJPEG_H
#define CJPEG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The picture's size from the JPEG header. */
int cjpeg_size(const uint8_t *jpeg, size_t size, int32_t *width, int32_t *height);

/* The whole picture as 8-bit BGR into dst (rows of width * 3 bytes); the picture must be
   width x height (EBADMSG otherwise) and dst at least width * height * 3 bytes (EINVAL otherwise). */
int cjpeg_decode_bgr(const uint8_t *jpeg, size_t size, int32_t width, int32_t height, uint8_t *dst, size_t dst_size,
                     uint32_t *warnings);

/* A grey thumb_width x thumb_height thumbnail (one byte a pixel), each pixel the mean brightness of its
   block of the picture: decoded at the smallest of 1/8, 1/4, 1/2, 1 scale that is at least the
   thumbnail's size, then block-averaged down to it. dst holds at least thumb_width * thumb_height bytes. */
int cjpeg_grey_thumbnail(const uint8_t *jpeg, size_t size, int32_t thumb_width, int32_t thumb_height, uint8_t *dst,
                         uint32_t *warnings);

/* The message of the last failed call on this thread ("" if none). */
const char *cjpeg_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* CJPEG_H */
