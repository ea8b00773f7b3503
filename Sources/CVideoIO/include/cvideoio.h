/*
 * cvideoio.h: video files, RTSP streams and image files through OpenCV alone (no dlib, no dnn), for
 * the capture stage. The face engine's shim (cvshim.h) is a separate target, so capture links no
 * face model code.
 *
 * Rules (DESIGN.md): opaque handles that own their memory, a status code per call plus a
 * thread-local message (vio_last_error), no C++ exception ever crosses this header. Frames are
 * 8-bit BGR, rows contiguous (stride = width * 3). Handles are not thread-safe.
 */
#ifndef CVIDEOIO_H
#define CVIDEOIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The same numbers as the face engine's cv_status for the same conditions. */
typedef enum vio_status {
    VIO_OK = 0,
    VIO_ERR_ARGUMENT = 1,  /* a null pointer, a bad size, a bad file name */
    VIO_ERR_IO = 2,        /* file missing, unreadable, a directory; cannot write */
    VIO_ERR_VIDEO = 6,     /* a video source cannot be opened or read, a writer cannot be opened */
    VIO_ERR_END = 7,       /* end of a finite video stream */
    VIO_ERR_INTERNAL = 8,  /* an unexpected C++ exception, caught here */
} vio_status;

/* The message of the last failed call on this thread ("" if none). Valid until the next call. */
const char *vio_last_error(void);

/* ---------------------------------------------------------------- reading (files, RTSP) */

typedef struct vio_reader vio_reader;
typedef struct vio_frame vio_frame;

/* Opens a file path or an rtsp:// (http://) URL through OpenCV's FFmpeg backend (RTSP over TCP;
   3 s to open, 2 s per read). An MJPEG stream is read as its JPEG packets, not decoded (see
   vio_frame_is_jpeg); any other is decoded to BGR. */
vio_status vio_reader_open(const char *url, vio_reader **out);
/* The next frame (the caller frees it); VIO_ERR_END at the end of a file. */
vio_status vio_reader_read(vio_reader *reader, vio_frame **out);
double vio_reader_fps(const vio_reader *reader);           /* 0 if unknown */
int64_t vio_reader_frame_count(const vio_reader *reader);  /* -1 if unknown (live) */
void vio_reader_free(vio_reader *reader);

/* The picture's size (a JPEG packet: the stream's frame size, which the decoder checks). */
int32_t vio_frame_width(const vio_frame *frame);
int32_t vio_frame_height(const vio_frame *frame);
/* 1 when the frame is a JPEG picture (an MJPEG stream's packet), 0 when it is BGR pixels. */
int vio_frame_is_jpeg(const vio_frame *frame);
/* BGR: height rows of width * 3 bytes; JPEG: vio_frame_size bytes of JPEG data. */
const uint8_t *vio_frame_data(const vio_frame *frame);
size_t vio_frame_size(const vio_frame *frame);
void vio_frame_free(vio_frame *frame);

/* ---------------------------------------------------------------- thumbnails */

/* Grey thumbnail of a raw BGR buffer (row_stride >= width * 3) for motion detection: cv::resize with
 * INTER_AREA (each thumbnail pixel is the mean of its block, which averages sensor noise away) then
 * BGR -> grey. Writes thumb_height rows of thumb_width bytes to out (capacity >= thumb_width * thumb_height).
 * (A JPEG frame's thumbnail is decoded from the JPEG at reduced scale instead: cjpeg.h.) */
vio_status vio_grey_thumbnail(const uint8_t *bgr, int32_t width, int32_t height, size_t row_stride, int32_t thumb_width,
                              int32_t thumb_height, uint8_t *out, size_t capacity);

/* ---------------------------------------------------------------- writing */

typedef struct vio_writer vio_writer;
/* Writes an MJPEG .avi (always available in OpenCV) or, by extension, what FFmpeg offers. */
vio_status vio_writer_open(const char *path, double fps, int32_t width, int32_t height, vio_writer **out);
/* One frame of the writer's size, rows of `row_stride` bytes (at least width * 3). */
vio_status vio_writer_write(vio_writer *writer, const uint8_t *bgr, int32_t width, int32_t height, size_t row_stride);
void vio_writer_free(vio_writer *writer);

/* Saves BGR pixels as an image file, the format by extension (.jpg, .jpeg, .png, .bmp); written to a
   temporary name and renamed, so a reader never sees half a file. */
vio_status vio_image_write(const char *path, const uint8_t *bgr, int32_t width, int32_t height, size_t row_stride);

#ifdef __cplusplus
}
#endif
#endif /* CVIDEOIO_H */
