/*
 * cv4l2.h: a plain C face over libv4l2 + libv4lconvert for CaptureKit.
 *
 * Swift cannot call the variadic v4l2_ioctl nor reach into the unions of videodev2.h
 * comfortably, so the V4L2 conversation lives here: open, query, enumerate, negotiate,
 * mmap streaming, dequeue/requeue and conversion to BGR24 through libv4lconvert.
 *
 * Every call that can fail returns 0 or an errno value; cv4l2_last_operation() then names
 * what failed ("VIDIOC_DQBUF", "open", ...) on this thread. A cv4l2_device is not
 * thread-safe: one thread owns it (CaptureKit's capture thread).
 */
#ifndef CV4L2_H
#define CV4L2_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Common fourccs (V4L2_PIX_FMT_*). */
#define CV4L2_FOURCC(a, b, c, d) ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))
#define CV4L2_PIX_FMT_MJPEG CV4L2_FOURCC('M', 'J', 'P', 'G')
#define CV4L2_PIX_FMT_JPEG CV4L2_FOURCC('J', 'P', 'E', 'G')
#define CV4L2_PIX_FMT_YUYV CV4L2_FOURCC('Y', 'U', 'Y', 'V')
#define CV4L2_PIX_FMT_BGR24 CV4L2_FOURCC('B', 'G', 'R', '3')

#define CV4L2_MAX_BUFFERS 32

typedef struct cv4l2_device cv4l2_device;

typedef struct cv4l2_info {
    char driver[16];
    char card[32];
    char bus_info[32];
    uint32_t capabilities;   /* device caps when the driver reports them */
    int32_t can_capture;     /* V4L2_CAP_VIDEO_CAPTURE */
    int32_t can_stream;      /* V4L2_CAP_STREAMING */
} cv4l2_info;

typedef struct cv4l2_format_desc {
    uint32_t pixelformat;
    uint32_t compressed;
    char description[32];
} cv4l2_format_desc;

typedef struct cv4l2_frame_size {
    uint32_t stepwise;       /* 0: discrete (width, height); 1: a range with steps */
    uint32_t width, height;  /* discrete size, or the minimum */
    uint32_t max_width, max_height, step_width, step_height;
} cv4l2_frame_size;

typedef struct cv4l2_format {
    uint32_t pixelformat;
    uint32_t width, height;
    uint32_t bytesperline;
    uint32_t sizeimage;
} cv4l2_format;

typedef struct cv4l2_buffer {
    uint32_t index;
    uint32_t bytesused;
    uint32_t sequence;
    uint32_t flags;
    uint32_t timestamp_monotonic;  /* 1 when the timestamp is CLOCK_MONOTONIC */
    uint64_t timestamp_ns;
    const uint8_t *data;           /* valid until cv4l2_requeue */
} cv4l2_buffer;

/* The name of what failed last on this thread ("" if nothing). */
const char *cv4l2_last_operation(void);

/* Opens a node (non-blocking) through libv4l2 with its own conversion disabled, and
 * checks it is a streaming capture device (ENODEV/ENOTSUP otherwise). */
int cv4l2_open(const char *path, cv4l2_device **out);
/* Stops streaming, unmaps the buffers, frees them and closes the fd. Safe on NULL. */
void cv4l2_close(cv4l2_device *device);

int cv4l2_info_get(cv4l2_device *device, cv4l2_info *out);
/* Enumeration: returns 0, or EINVAL past the last index. */
int cv4l2_enum_format(cv4l2_device *device, uint32_t index, cv4l2_format_desc *out);
int cv4l2_enum_size(cv4l2_device *device, uint32_t pixelformat, uint32_t index, cv4l2_frame_size *out);
/* Frame interval as a fraction of a second (numerator/denominator), discrete or the minimum. */
int cv4l2_enum_interval(cv4l2_device *device, uint32_t pixelformat, uint32_t width, uint32_t height,
                        uint32_t index, uint32_t *numerator, uint32_t *denominator);

/* VIDIOC_S_FMT; *actual receives what the driver chose. */
int cv4l2_set_format(cv4l2_device *device, uint32_t pixelformat, uint32_t width, uint32_t height,
                     cv4l2_format *actual);
int cv4l2_get_format(cv4l2_device *device, cv4l2_format *out);
/* VIDIOC_S_PARM; *actual_fps receives the rate the driver chose (0 if it cannot tell). */
int cv4l2_set_fps(cv4l2_device *device, double fps, double *actual_fps);

/* Requests `buffers` mmap buffers (the driver may adjust), maps and queues them, creates
 * the converter and starts streaming. *granted receives the number of buffers. */
int cv4l2_start(cv4l2_device *device, uint32_t buffers, uint32_t *granted);
/* Waits for a frame (or for wake_fd, if >= 0, to become readable): 0 when the device has a
 * frame, ETIMEDOUT, EINTR when woken through wake_fd, ENODEV on POLLERR/POLLHUP. */
int cv4l2_wait(cv4l2_device *device, int32_t timeout_ms, int wake_fd);
/* VIDIOC_DQBUF. EAGAIN when no frame is ready. */
int cv4l2_dequeue(cv4l2_device *device, cv4l2_buffer *out);
/* Converts a dequeued buffer to BGR24 (width * 3 bytes per row) into dst through
 * libv4lconvert. Returns 0, ENOSPC if dst is too small, EBADMSG when the frame cannot be
 * decoded (a corrupt JPEG). */
int cv4l2_convert_bgr(cv4l2_device *device, const cv4l2_buffer *buffer, uint8_t *dst, size_t dst_size);
/* The converter's message for the last failed conversion. */
const char *cv4l2_convert_error(cv4l2_device *device);
/* VIDIOC_QBUF: gives a dequeued buffer back to the driver. */
int cv4l2_requeue(cv4l2_device *device, uint32_t index);

/* The fd (for diagnostics). */
int cv4l2_fd(const cv4l2_device *device);

/* A wake-up fd (eventfd) for a capture thread that sleeps in poll: create, signal (from any
 * thread), drain, and a sleep that a signal cuts short (returns 1 when woken, 0 on timeout). */
int cv4l2_wake_create(void);
void cv4l2_wake_signal(int wake_fd);
void cv4l2_wake_drain(int wake_fd);
int cv4l2_wake_sleep(int wake_fd, int32_t timeout_ms);
void cv4l2_wake_close(int wake_fd);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds. */
uint64_t cv4l2_monotonic_ns(void);
uint64_t cv4l2_realtime_ns(void);

#ifdef __cplusplus
}
#endif
#endif /* CV4L2_H */
