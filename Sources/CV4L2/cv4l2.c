// Plain C wrapper over libv4l2/libv4lconvert (v4l2_ioctl is variadic, which Swift cannot call).
#define _GNU_SOURCE
#include "cv4l2.h"

#include <errno.h>
#include <fcntl.h>
#include <libv4l2.h>
#include <libv4lconvert.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct cv4l2_device {
    int fd;
    int streaming;
    uint32_t nbufs;
    void *maps[CV4L2_MAX_BUFFERS];
    size_t lengths[CV4L2_MAX_BUFFERS];
    struct v4l2_format format;   /* the negotiated source format */
    struct v4lconvert_data *convert;
};

static __thread const char *t_last_op = "";

const char *cv4l2_last_operation(void) { return t_last_op; }

/* Runs an ioctl, retrying on EINTR; returns 0 or errno and records the operation. */
static int xioctl(int fd, unsigned long request, void *arg, const char *name) {
    int rc;
    do {
        rc = v4l2_ioctl(fd, request, arg);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        t_last_op = name;
        return errno ? errno : EIO;
    }
    return 0;
}

#define IOCTL(dev, req, arg) xioctl((dev)->fd, req, arg, #req)

int cv4l2_fd(const cv4l2_device *device) { return device ? device->fd : -1; }

int cv4l2_open(const char *path, cv4l2_device **out) {
    if (!path || !out) { t_last_op = "open"; return EINVAL; }
    *out = NULL;
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) { t_last_op = "open"; return errno; }
    if (v4l2_fd_open(fd, V4L2_DISABLE_CONVERSION) < 0) {
        int e = errno ? errno : ENODEV;
        close(fd);
        t_last_op = "v4l2_fd_open";
        return e;
    }
    cv4l2_device *d = calloc(1, sizeof *d);
    if (!d) { v4l2_close(fd); t_last_op = "calloc"; return ENOMEM; }
    d->fd = fd;
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    int rc = IOCTL(d, VIDIOC_QUERYCAP, &cap);
    if (rc) { cv4l2_close(d); return rc; }
    uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
    if (!(caps & V4L2_CAP_VIDEO_CAPTURE)) { cv4l2_close(d); t_last_op = "VIDIOC_QUERYCAP (not a capture device)"; return ENODEV; }
    if (!(caps & V4L2_CAP_STREAMING)) { cv4l2_close(d); t_last_op = "VIDIOC_QUERYCAP (no streaming I/O)"; return ENOTSUP; }
    d->format.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    rc = IOCTL(d, VIDIOC_G_FMT, &d->format);
    if (rc) { cv4l2_close(d); return rc; }
    *out = d;
    return 0;
}

static void stop_and_unmap(cv4l2_device *d) {
    if (d->streaming) {
        int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        (void)v4l2_ioctl(d->fd, VIDIOC_STREAMOFF, &type);  // fails with ENODEV once unplugged: fine
        d->streaming = 0;
    }
    for (uint32_t i = 0; i < d->nbufs; i++)
        if (d->maps[i] && d->maps[i] != MAP_FAILED) v4l2_munmap(d->maps[i], d->lengths[i]);
    if (d->nbufs) {
        struct v4l2_requestbuffers req;
        memset(&req, 0, sizeof req);
        req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        req.memory = V4L2_MEMORY_MMAP;
        (void)v4l2_ioctl(d->fd, VIDIOC_REQBUFS, &req);
    }
    memset(d->maps, 0, sizeof d->maps);
    d->nbufs = 0;
    if (d->convert) v4lconvert_destroy(d->convert);
    d->convert = NULL;
}

void cv4l2_close(cv4l2_device *device) {
    if (!device) return;
    stop_and_unmap(device);
    if (device->fd >= 0) v4l2_close(device->fd);
    free(device);
}

static void copy_string(char *dst, size_t cap, const uint8_t *src, size_t src_cap) {
    size_t n = strnlen((const char *)src, src_cap);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

int cv4l2_info_get(cv4l2_device *device, cv4l2_info *out) {
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    int rc = IOCTL(device, VIDIOC_QUERYCAP, &cap);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    copy_string(out->driver, sizeof out->driver, cap.driver, sizeof cap.driver);
    copy_string(out->card, sizeof out->card, cap.card, sizeof cap.card);
    copy_string(out->bus_info, sizeof out->bus_info, cap.bus_info, sizeof cap.bus_info);
    out->capabilities = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
    out->can_capture = (out->capabilities & V4L2_CAP_VIDEO_CAPTURE) != 0;
    out->can_stream = (out->capabilities & V4L2_CAP_STREAMING) != 0;
    return 0;
}

int cv4l2_enum_format(cv4l2_device *device, uint32_t index, cv4l2_format_desc *out) {
    struct v4l2_fmtdesc f;
    memset(&f, 0, sizeof f);
    f.index = index;
    f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    int rc = IOCTL(device, VIDIOC_ENUM_FMT, &f);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->pixelformat = f.pixelformat;
    out->compressed = (f.flags & V4L2_FMT_FLAG_COMPRESSED) != 0;
    copy_string(out->description, sizeof out->description, f.description, sizeof f.description);
    return 0;
}

int cv4l2_enum_size(cv4l2_device *device, uint32_t pixelformat, uint32_t index, cv4l2_frame_size *out) {
    struct v4l2_frmsizeenum s;
    memset(&s, 0, sizeof s);
    s.index = index;
    s.pixel_format = pixelformat;
    int rc = IOCTL(device, VIDIOC_ENUM_FRAMESIZES, &s);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    if (s.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
        out->width = s.discrete.width;
        out->height = s.discrete.height;
    } else {
        if (index > 0) { t_last_op = "VIDIOC_ENUM_FRAMESIZES"; return EINVAL; }
        out->stepwise = 1;
        out->width = s.stepwise.min_width;
        out->height = s.stepwise.min_height;
        out->max_width = s.stepwise.max_width;
        out->max_height = s.stepwise.max_height;
        out->step_width = s.type == V4L2_FRMSIZE_TYPE_CONTINUOUS ? 1 : s.stepwise.step_width;
        out->step_height = s.type == V4L2_FRMSIZE_TYPE_CONTINUOUS ? 1 : s.stepwise.step_height;
    }
    return 0;
}

int cv4l2_enum_interval(cv4l2_device *device, uint32_t pixelformat, uint32_t width, uint32_t height,
                        uint32_t index, uint32_t *numerator, uint32_t *denominator) {
    struct v4l2_frmivalenum iv;
    memset(&iv, 0, sizeof iv);
    iv.index = index;
    iv.pixel_format = pixelformat;
    iv.width = width;
    iv.height = height;
    int rc = IOCTL(device, VIDIOC_ENUM_FRAMEINTERVALS, &iv);
    if (rc) return rc;
    if (iv.type == V4L2_FRMIVAL_TYPE_DISCRETE) {
        *numerator = iv.discrete.numerator;
        *denominator = iv.discrete.denominator;
    } else {
        if (index > 0) { t_last_op = "VIDIOC_ENUM_FRAMEINTERVALS"; return EINVAL; }
        *numerator = iv.stepwise.min.numerator;
        *denominator = iv.stepwise.min.denominator;
    }
    return 0;
}

static void export_format(const struct v4l2_format *f, cv4l2_format *out) {
    out->pixelformat = f->fmt.pix.pixelformat;
    out->width = f->fmt.pix.width;
    out->height = f->fmt.pix.height;
    out->bytesperline = f->fmt.pix.bytesperline;
    out->sizeimage = f->fmt.pix.sizeimage;
}

int cv4l2_set_format(cv4l2_device *device, uint32_t pixelformat, uint32_t width, uint32_t height,
                     cv4l2_format *actual) {
    struct v4l2_format f;
    memset(&f, 0, sizeof f);
    f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    f.fmt.pix.pixelformat = pixelformat;
    f.fmt.pix.width = width;
    f.fmt.pix.height = height;
    f.fmt.pix.field = V4L2_FIELD_ANY;
    int rc = IOCTL(device, VIDIOC_S_FMT, &f);
    if (rc) return rc;
    device->format = f;
    if (actual) export_format(&f, actual);
    return 0;
}

int cv4l2_get_format(cv4l2_device *device, cv4l2_format *out) {
    struct v4l2_format f;
    memset(&f, 0, sizeof f);
    f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    int rc = IOCTL(device, VIDIOC_G_FMT, &f);
    if (rc) return rc;
    device->format = f;
    export_format(&f, out);
    return 0;
}

int cv4l2_set_fps(cv4l2_device *device, double fps, double *actual_fps) {
    struct v4l2_streamparm p;
    memset(&p, 0, sizeof p);
    p.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (actual_fps) *actual_fps = 0;
    if (fps > 0) {
        p.parm.capture.timeperframe.numerator = 1000;
        p.parm.capture.timeperframe.denominator = (uint32_t)(fps * 1000.0 + 0.5);
        int rc = IOCTL(device, VIDIOC_S_PARM, &p);
        if (rc) return rc;
    } else {
        int rc = IOCTL(device, VIDIOC_G_PARM, &p);
        if (rc) return rc;
    }
    const struct v4l2_fract *t = &p.parm.capture.timeperframe;
    if (actual_fps && t->numerator) *actual_fps = (double)t->denominator / (double)t->numerator;
    return 0;
}

int cv4l2_start(cv4l2_device *device, uint32_t buffers, uint32_t *granted) {
    if (device->streaming || device->nbufs) { t_last_op = "cv4l2_start (already started)"; return EBUSY; }
    struct v4l2_requestbuffers req;
    memset(&req, 0, sizeof req);
    req.count = buffers > CV4L2_MAX_BUFFERS ? CV4L2_MAX_BUFFERS : buffers;
    req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    req.memory = V4L2_MEMORY_MMAP;
    int rc = IOCTL(device, VIDIOC_REQBUFS, &req);
    if (rc) return rc;
    if (req.count < 2) { t_last_op = "VIDIOC_REQBUFS (fewer than 2 buffers)"; stop_and_unmap(device); return ENOMEM; }
    device->nbufs = req.count > CV4L2_MAX_BUFFERS ? CV4L2_MAX_BUFFERS : req.count;
    for (uint32_t i = 0; i < device->nbufs; i++) {
        struct v4l2_buffer b;
        memset(&b, 0, sizeof b);
        b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b.memory = V4L2_MEMORY_MMAP;
        b.index = i;
        rc = IOCTL(device, VIDIOC_QUERYBUF, &b);
        if (rc) { stop_and_unmap(device); return rc; }
        void *p = v4l2_mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, device->fd, b.m.offset);
        if (p == MAP_FAILED) { rc = errno; t_last_op = "mmap"; stop_and_unmap(device); return rc; }
        device->maps[i] = p;
        device->lengths[i] = b.length;
    }
    for (uint32_t i = 0; i < device->nbufs; i++) {
        rc = cv4l2_requeue(device, i);
        if (rc) { stop_and_unmap(device); return rc; }
    }
    device->convert = v4lconvert_create(device->fd);
    if (!device->convert) { t_last_op = "v4lconvert_create"; stop_and_unmap(device); return ENOMEM; }
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    rc = IOCTL(device, VIDIOC_STREAMON, &type);
    if (rc) { stop_and_unmap(device); return rc; }
    device->streaming = 1;
    if (granted) *granted = device->nbufs;
    return 0;
}

int cv4l2_wait(cv4l2_device *device, int32_t timeout_ms, int wake_fd) {
    struct pollfd p[2] = {
        {.fd = device->fd, .events = POLLIN},
        {.fd = wake_fd, .events = POLLIN},
    };
    int rc = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (rc < 0) {
        if (errno == EINTR) return EAGAIN;
        t_last_op = "poll";
        return errno;
    }
    if (wake_fd >= 0 && (p[1].revents & POLLIN)) return EINTR;
    if (rc == 0) return ETIMEDOUT;
    if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) { t_last_op = "poll (device error)"; return ENODEV; }
    return 0;
}

int cv4l2_dequeue(cv4l2_device *device, cv4l2_buffer *out) {
    struct v4l2_buffer b;
    memset(&b, 0, sizeof b);
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_MMAP;
    int rc = IOCTL(device, VIDIOC_DQBUF, &b);
    if (rc) return rc;
    if (b.index >= device->nbufs) { t_last_op = "VIDIOC_DQBUF (bad index)"; return EIO; }
    memset(out, 0, sizeof *out);
    out->index = b.index;
    out->bytesused = b.bytesused && b.bytesused <= device->lengths[b.index] ? b.bytesused : (uint32_t)device->lengths[b.index];
    out->sequence = b.sequence;
    out->flags = b.flags;
    out->timestamp_monotonic = (b.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
    out->timestamp_ns = (uint64_t)b.timestamp.tv_sec * 1000000000ull + (uint64_t)b.timestamp.tv_usec * 1000ull;
    out->data = device->maps[b.index];
    return 0;
}

int cv4l2_convert_bgr(cv4l2_device *device, const cv4l2_buffer *buffer, uint8_t *dst, size_t dst_size) {
    if (!device->convert || !buffer || buffer->index >= device->nbufs) { t_last_op = "v4lconvert_convert"; return EINVAL; }
    struct v4l2_format src = device->format;
    struct v4l2_format dest = src;
    uint32_t w = src.fmt.pix.width, h = src.fmt.pix.height;
    dest.fmt.pix.pixelformat = V4L2_PIX_FMT_BGR24;
    dest.fmt.pix.bytesperline = w * 3;
    dest.fmt.pix.sizeimage = w * h * 3;
    if (dst_size < (size_t)w * h * 3) { t_last_op = "v4lconvert_convert"; return ENOSPC; }
    int n = v4lconvert_convert(device->convert, &src, &dest, (unsigned char *)buffer->data, (int)buffer->bytesused,
                               dst, (int)dst_size);
    if (n < 0) {
        t_last_op = "v4lconvert_convert";
        return EBADMSG;
    }
    return 0;
}

const char *cv4l2_convert_error(cv4l2_device *device) {
    return device && device->convert ? v4lconvert_get_error_message(device->convert) : "";
}

int cv4l2_requeue(cv4l2_device *device, uint32_t index) {
    if (index >= device->nbufs) { t_last_op = "VIDIOC_QBUF"; return EINVAL; }
    struct v4l2_buffer b;
    memset(&b, 0, sizeof b);
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_MMAP;
    b.index = index;
    return IOCTL(device, VIDIOC_QBUF, &b);
}

int cv4l2_wake_create(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void cv4l2_wake_signal(int wake_fd) {
    uint64_t one = 1;
    if (wake_fd >= 0) (void)!write(wake_fd, &one, sizeof one);
}

void cv4l2_wake_drain(int wake_fd) {
    uint64_t count;
    if (wake_fd >= 0) (void)!read(wake_fd, &count, sizeof count);
}

int cv4l2_wake_sleep(int wake_fd, int32_t timeout_ms) {
    struct pollfd p = {.fd = wake_fd, .events = POLLIN};
    int rc = poll(&p, 1, timeout_ms);
    return rc > 0 && (p.revents & POLLIN);
}

void cv4l2_wake_close(int wake_fd) {
    if (wake_fd >= 0) close(wake_fd);
}

static uint64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t cv4l2_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t cv4l2_realtime_ns(void) { return clock_ns(CLOCK_REALTIME); }
