/*
 * fake_v4l2.h: a user-space fake V4L2 capture device for tests (DESIGN.md, "Testing V4L2
 * without a kernel driver").
 *
 * Linked into a process, fake_v4l2.c interposes open/openat/open64, ioctl, mmap, munmap,
 * read, close, stat/lstat/fstat, access and syscall() for the configured device paths, so
 * that real V4L2 clients (libv4l2, which calls syscall() directly, OpenCV's backend, or
 * v4l2-ctl through LD_PRELOAD) see a camera. Every other call passes straight through.
 *
 * The fake fd is a real timerfd ticking at the frame rate, so poll/epoll work unchanged;
 * buffers live in a memfd, so mmap is a real shared mapping. Frames are a test pattern
 * with the V4L2 sequence number stamped in (see fake_v4l2_read_stamp). Formats: YUYV and
 * MJPEG (libjpeg, 4:2:2 like a UVC camera).
 *
 * The state is process-wide: tests that use it must be serialised.
 *
 * Used as LD_PRELOAD, the environment configures one device:
 *   FAKE_V4L2_DEVICE=/dev/video0 FAKE_V4L2_FORMATS=YUYV,MJPG FAKE_V4L2_SIZES=640x480,1280x720
 *   FAKE_V4L2_FPS=30
 */
#ifndef FAKE_V4L2_H
#define FAKE_V4L2_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Format bits for fake_v4l2_config.formats; enumerated in this order (MJPEG first, like UVC). */
#define FAKE_V4L2_MJPEG 0x1u
#define FAKE_V4L2_YUYV 0x2u

#define FAKE_V4L2_MAX_SIZES 8
#define FAKE_V4L2_MAX_DEVICES 8

typedef struct fake_v4l2_size {
    uint32_t width;   /* even, >= 64 */
    uint32_t height;  /* >= 16 */
} fake_v4l2_size;

typedef struct fake_v4l2_config {
    const char *path;                  /* e.g. "/dev/video7"; copied */
    const char *card;                  /* VIDIOC_QUERYCAP card name; NULL: "Fake Camera" */
    uint32_t formats;                  /* FAKE_V4L2_MJPEG | FAKE_V4L2_YUYV */
    uint32_t size_count;               /* 1..FAKE_V4L2_MAX_SIZES */
    fake_v4l2_size sizes[FAKE_V4L2_MAX_SIZES];
    uint32_t fps;                      /* 1..1000 */
    uint32_t jpeg_quality;             /* 1..100; 0 means 80 */
} fake_v4l2_config;

typedef struct fake_v4l2_stats {
    uint64_t open_attempts;    /* opens of the path, failed ones included */
    uint64_t opens;            /* successful opens */
    uint64_t open_fds;         /* fds open right now */
    uint64_t mapped_buffers;   /* mmaps of the device's buffers not yet unmapped */
    uint64_t streaming_fds;    /* fds between STREAMON and STREAMOFF/close */
    uint64_t frames_produced;  /* frames the "sensor" produced (sequence numbers used) */
    uint64_t frames_filled;    /* frames written into a queued buffer */
    uint64_t frames_dropped;   /* produced while no buffer was queued (a sequence gap) */
    uint64_t frames_dequeued;  /* successful VIDIOC_DQBUF and read() frames */
    uint64_t last_sequence;    /* sequence number of the last frame dequeued or read */
    uint64_t generate_ns;      /* thread CPU time spent drawing/encoding frames */
    uint32_t width, height;    /* current format */
    uint32_t pixelformat;      /* current V4L2 fourcc */
    uint32_t present;          /* 0 while the device has vanished */
} fake_v4l2_stats;

/* Adds a device (or replaces the configuration of one with the same path that has no open
 * fd). Returns 0 or an errno value (EINVAL bad config, ENOSPC too many, EBUSY open). */
int fake_v4l2_add(const fake_v4l2_config *config);
/* Removes one device; its open fds then fail with ENODEV. Returns 0 or ENOENT. */
int fake_v4l2_remove(const char *path);
/* Removes every device. */
void fake_v4l2_reset(void);
/* present = 0: the device vanishes as when unplugged: open/stat fail with ENOENT, every
 * ioctl/mmap/read on an fd opened before fails with ENODEV and poll wakes up.
 * present = 1: it comes back (old fds stay dead; a new open works). Returns 0 or ENOENT. */
int fake_v4l2_set_present(const char *path, int present);
/* Counters and current state of a device. Returns 0 or ENOENT. */
int fake_v4l2_get_stats(const char *path, fake_v4l2_stats *out);

/* Fake fds open right now, over every device (removed ones included). */
uint64_t fake_v4l2_open_fd_count(void);

/* Reads the sequence number stamped in a frame once it is BGR (rows of width*3 bytes,
 * row_stride apart). Returns 0 and sets *sequence, or -1 when no valid stamp is found. */
int fake_v4l2_read_stamp(const uint8_t *bgr, uint32_t width, uint32_t height, size_t row_stride,
                         uint32_t *sequence);

#ifdef __cplusplus
}
#endif
#endif /* FAKE_V4L2_H */
