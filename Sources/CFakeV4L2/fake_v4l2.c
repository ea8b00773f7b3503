// A user-space fake V4L2 capture device for tests (DESIGN.md): interposes libc calls for
// the configured paths and passes every other call straight through. See fake_v4l2.h.
#define _GNU_SOURCE
#include "fake_v4l2.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <jpeglib.h>

#define MAX_HANDLES 32
#define MAX_BUFFERS 32
#define MAX_MAPPINGS 256
#define FD_TABLE 4096
#define FAKE_MAJOR 81
#define FAKE_MINOR_BASE 200

// ---------------------------------------------------------------- real libc entry points

static long (*real_syscall)(long, ...);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static ssize_t (*real_read)(int, void *, size_t);
static int (*real_close)(int);
static int (*real_stat)(const char *, struct stat *);
static int (*real_lstat)(const char *, struct stat *);
static int (*real_fstat)(int, struct stat *);
static int (*real_access)(const char *, int);

static void resolve(void) {
    // Benign race: every thread stores the same values.
    if (real_syscall) return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
    real_mmap64 = dlsym(RTLD_NEXT, "mmap64");
    real_munmap = dlsym(RTLD_NEXT, "munmap");
    real_read = dlsym(RTLD_NEXT, "read");
    real_close = dlsym(RTLD_NEXT, "close");
    real_stat = dlsym(RTLD_NEXT, "stat");
    real_lstat = dlsym(RTLD_NEXT, "lstat");
    real_fstat = dlsym(RTLD_NEXT, "fstat");
    real_access = dlsym(RTLD_NEXT, "access");
    if (!real_open64) real_open64 = real_open;
    if (!real_openat64) real_openat64 = real_openat;
    if (!real_mmap64) real_mmap64 = real_mmap;
    long (*sc)(long, ...) = dlsym(RTLD_NEXT, "syscall");
    __atomic_store_n(&real_syscall, sc, __ATOMIC_RELEASE);
}

// ---------------------------------------------------------------- state

typedef struct device {
    int used;
    char path[256];
    char card[32];
    uint32_t formats;
    uint32_t size_count;
    fake_v4l2_size sizes[FAKE_V4L2_MAX_SIZES];
    uint32_t fps;
    uint32_t quality;
    int present;
    uint32_t generation;   // bumped on vanish/remove: handles of an older generation are dead
    uint64_t instance;     // unique per fake_v4l2_add: a reused slot is another device
    uint32_t width, height, pixelformat;
    fake_v4l2_stats stats;
} device;

enum { BUF_APP = 0, BUF_QUEUED = 1, BUF_FILLING = 2, BUF_DONE = 3 };

typedef struct buffer {
    int state;
    uint32_t bytesused;
    uint32_t sequence;
    uint64_t timestamp_ns;
} buffer;

typedef struct handle {
    int used;
    int fd;               // the timerfd the application holds
    int dev;
    uint32_t generation;
    uint64_t instance;
    int nonblock;
    int busy;             // threads drawing into this handle's buffers outside the lock
    int closed;           // closed while busy: the last one out frees it
    int memfd;
    uint32_t nbufs;
    size_t buf_stride;    // page-aligned distance between buffers in the memfd
    uint32_t sizeimage;
    uint8_t *map;         // our own writable mapping of the memfd
    buffer bufs[MAX_BUFFERS];
    uint32_t queue[MAX_BUFFERS], qhead, qcount;  // FIFO of queued buffers
    uint32_t done[MAX_BUFFERS], dhead, dcount;   // FIFO of filled buffers
    int streaming;
    int reading;          // read() mode started
    uint64_t start_ns, period_ns, produced;
} handle;

typedef struct mapping {
    void *addr;
    size_t length;
    uint64_t instance;
} mapping;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_map_lock = PTHREAD_MUTEX_INITIALIZER;
static device g_devices[FAKE_V4L2_MAX_DEVICES];
static handle g_handles[MAX_HANDLES];
static mapping g_mappings[MAX_MAPPINGS];
static atomic_int g_device_count;             // fast path: nothing configured...
static atomic_int g_handle_count;             // ...and no fake fd open: nothing to do
static uint64_t g_next_instance;
static atomic_int g_mapping_count;
static _Atomic unsigned char g_fake_fd[FD_TABLE];

static inline int fd_is_fake(int fd) {
    return fd >= 0 && fd < FD_TABLE && atomic_load_explicit(&g_fake_fd[fd], memory_order_acquire);
}

static uint64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int find_device_locked(const char *path) {
    if (!path) return -1;
    for (int i = 0; i < FAKE_V4L2_MAX_DEVICES; i++)
        if (g_devices[i].used && strcmp(g_devices[i].path, path) == 0) return i;
    return -1;
}

static handle *find_handle_locked(int fd) {
    for (int i = 0; i < MAX_HANDLES; i++)
        if (g_handles[i].used && !g_handles[i].closed && g_handles[i].fd == fd) return &g_handles[i];
    return NULL;
}

/* The device's counters, or a dummy when the device was removed (its slot may be reused). */
static fake_v4l2_stats g_orphan_stats;
static fake_v4l2_stats *stats_of_locked(const handle *h) {
    device *d = &g_devices[h->dev];
    return d->used && d->instance == h->instance ? &d->stats : &g_orphan_stats;
}

static int handle_alive_locked(const handle *h) {
    const device *d = &g_devices[h->dev];
    return d->used && d->present && d->generation == h->generation;
}

static void arm_timer(int fd, uint64_t first_ns, uint64_t period_ns) {
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(first_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(first_ns % 1000000000ull);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    its.it_interval.tv_sec = (time_t)(period_ns / 1000000000ull);
    its.it_interval.tv_nsec = (long)(period_ns % 1000000000ull);
    timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void disarm_timer(int fd) {
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    timerfd_settime(fd, 0, &its, NULL);
}

static void drain_timer(int fd) {
    uint64_t expirations;
    (void)real_read(fd, &expirations, sizeof expirations);
}

static void free_buffers_locked(handle *h) {
    if (h->map) real_munmap(h->map, h->buf_stride * h->nbufs);
    if (h->memfd >= 0) real_close(h->memfd);
    h->map = NULL;
    h->memfd = -1;
    h->nbufs = 0;
    h->qcount = h->dcount = 0;
}

static void release_handle_locked(handle *h);

static void stop_streaming_locked(handle *h) {
    if (h->streaming) stats_of_locked(h)->streaming_fds--;
    h->streaming = 0;
    h->reading = 0;
    h->qcount = h->dcount = 0;
    for (uint32_t i = 0; i < h->nbufs; i++) h->bufs[i].state = BUF_APP;
    disarm_timer(h->fd);
}

// ---------------------------------------------------------------- frame drawing

static uint32_t stamp_block(uint32_t width) {
    uint32_t bs = width / 32;
    if (bs >= 16) return 16;
    if (bs >= 8) return 8;
    bs &= ~1u;
    return bs < 2 ? 2 : bs;
}

// 75% colour bars in Y'CbCr (BT.601, studio range).
static const uint8_t k_bars[8][3] = {
    {180, 128, 128}, {162, 44, 142}, {131, 156, 44}, {112, 72, 58},
    {84, 184, 198},  {65, 100, 212}, {35, 212, 114}, {16, 128, 128},
};

/* Draws the test pattern as YUYV (bytesperline = width * 2): colour bars, a square that
 * moves with the sequence, and the sequence stamped in the top-left corner as 32 blocks
 * (1 = white) over a row of their complements. */
static void draw_yuyv(uint8_t *dst, uint32_t w, uint32_t h, uint32_t seq) {
    size_t stride = (size_t)w * 2;
    uint8_t *row0 = dst;
    for (uint32_t x = 0; x < w; x += 2) {
        const uint8_t *c = k_bars[(x * 8) / w];
        row0[x * 2 + 0] = c[0];
        row0[x * 2 + 1] = c[1];
        row0[x * 2 + 2] = c[0];
        row0[x * 2 + 3] = c[2];
    }
    for (uint32_t y = 1; y < h; y++) memcpy(dst + y * stride, row0, stride);

    uint32_t side = h / 8 < 8 ? 8 : (h / 8) & ~1u;
    if (side < w && side < h) {
        uint32_t x0 = ((seq * 8u) % (w - side)) & ~1u, y0 = (h - side) / 2;
        for (uint32_t y = y0; y < y0 + side; y++) {
            uint8_t *p = dst + y * stride + x0 * 2;
            for (uint32_t x = 0; x < side; x += 2, p += 4) { p[0] = 128; p[1] = 128; p[2] = 128; p[3] = 128; }
        }
    }

    uint32_t bs = stamp_block(w);
    if (32 * bs > w || 2 * bs > h) return;
    for (uint32_t y = 0; y < 2 * bs; y++) {
        uint8_t *p = dst + y * stride;
        int complement = y >= bs;
        for (uint32_t bit = 0; bit < 32; bit++) {
            int on = (int)((seq >> bit) & 1u) ^ complement;
            uint8_t luma = on ? 235 : 16;
            for (uint32_t x = bit * bs; x < (bit + 1) * bs; x += 2) {
                p[x * 2 + 0] = luma; p[x * 2 + 1] = 128; p[x * 2 + 2] = luma; p[x * 2 + 3] = 128;
            }
        }
    }
}

typedef struct jpeg_fail {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
} jpeg_fail;

static void jpeg_fail_exit(j_common_ptr cinfo) {
    jpeg_fail *fail = (jpeg_fail *)cinfo->err;
    longjmp(fail->jump, 1);
}

/* Encodes a YUYV frame as a baseline 4:2:2 JPEG (what UVC cameras send) from raw planes,
 * so no colour conversion happens. Returns the size, or 0 when it does not fit. */
static size_t encode_mjpeg(const uint8_t *yuyv, uint32_t w, uint32_t h, int quality, uint8_t *dst, size_t cap) {
    struct jpeg_compress_struct c;
    jpeg_fail fail;
    unsigned char *out = NULL;
    unsigned long outsize = 0;
    size_t result = 0;
    uint8_t *planes = malloc((size_t)w * 8 * 2);
    if (!planes) return 0;
    c.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_fail_exit;
    if (setjmp(fail.jump)) {
        jpeg_destroy_compress(&c);
        free(out);
        free(planes);
        return 0;
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &outsize);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 3;
    c.in_color_space = JCS_YCbCr;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, JCS_YCbCr);
    jpeg_set_quality(&c, quality, TRUE);
    c.raw_data_in = TRUE;
    c.dct_method = JDCT_IFAST;
    c.comp_info[0].h_samp_factor = 2; c.comp_info[0].v_samp_factor = 1;
    c.comp_info[1].h_samp_factor = 1; c.comp_info[1].v_samp_factor = 1;
    c.comp_info[2].h_samp_factor = 1; c.comp_info[2].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);

    JSAMPROW yrows[8], urows[8], vrows[8];
    JSAMPARRAY arrays[3] = {yrows, urows, vrows};
    uint8_t *yplane = planes, *uplane = planes + (size_t)w * 8, *vplane = uplane + (size_t)w / 2 * 8;
    for (int i = 0; i < 8; i++) {
        yrows[i] = yplane + (size_t)i * w;
        urows[i] = uplane + (size_t)i * (w / 2);
        vrows[i] = vplane + (size_t)i * (w / 2);
    }
    while (c.next_scanline < c.image_height) {
        for (uint32_t i = 0; i < 8; i++) {
            uint32_t y = c.next_scanline + i;
            if (y >= h) y = h - 1;
            const uint8_t *src = yuyv + (size_t)y * w * 2;
            for (uint32_t x = 0; x < w / 2; x++) {
                yrows[i][2 * x] = src[4 * x];
                urows[i][x] = src[4 * x + 1];
                yrows[i][2 * x + 1] = src[4 * x + 2];
                vrows[i][x] = src[4 * x + 3];
            }
        }
        jpeg_write_raw_data(&c, arrays, 8);
    }
    jpeg_finish_compress(&c);
    if (outsize <= cap) {
        memcpy(dst, out, outsize);
        result = outsize;
    }
    jpeg_destroy_compress(&c);
    free(out);
    free(planes);
    return result;
}

/* Draws frame `seq` into dst; returns bytesused (0 on failure). */
static size_t draw_frame(uint8_t *dst, size_t cap, uint32_t w, uint32_t h, uint32_t fourcc, uint32_t seq, int quality) {
    size_t yuyv_size = (size_t)w * h * 2;
    if (fourcc == V4L2_PIX_FMT_YUYV) {
        if (cap < yuyv_size) return 0;
        draw_yuyv(dst, w, h, seq);
        return yuyv_size;
    }
    uint8_t *scratch = malloc(yuyv_size);
    if (!scratch) return 0;
    draw_yuyv(scratch, w, h, seq);
    size_t n = encode_mjpeg(scratch, w, h, quality, dst, cap);
    free(scratch);
    return n;
}

int fake_v4l2_read_stamp(const uint8_t *bgr, uint32_t width, uint32_t height, size_t row_stride, uint32_t *sequence) {
    if (!bgr || !sequence) return -1;
    uint32_t bs = stamp_block(width);
    if (32 * bs > width || 2 * bs > height) return -1;
    uint32_t value = 0;
    for (uint32_t bit = 0; bit < 32; bit++) {
        uint32_t x = bit * bs + bs / 2;
        const uint8_t *top = bgr + (size_t)(bs / 2) * row_stride + (size_t)x * 3;
        const uint8_t *bottom = bgr + (size_t)(bs + bs / 2) * row_stride + (size_t)x * 3;
        int t = (top[0] + top[1] + top[2]) > 3 * 128;
        int b = (bottom[0] + bottom[1] + bottom[2]) > 3 * 128;
        if (t == b) return -1;
        value |= (uint32_t)t << bit;
    }
    *sequence = value;
    return 0;
}

// ---------------------------------------------------------------- control API

static int device_formats(const device *d, uint32_t out[2]) {
    int n = 0;
    if (d->formats & FAKE_V4L2_MJPEG) out[n++] = V4L2_PIX_FMT_MJPEG;
    if (d->formats & FAKE_V4L2_YUYV) out[n++] = V4L2_PIX_FMT_YUYV;
    return n;
}

static int device_supports(const device *d, uint32_t fourcc) {
    return (fourcc == V4L2_PIX_FMT_MJPEG && (d->formats & FAKE_V4L2_MJPEG)) ||
           (fourcc == V4L2_PIX_FMT_YUYV && (d->formats & FAKE_V4L2_YUYV));
}

int fake_v4l2_add(const fake_v4l2_config *config) {
    resolve();
    if (!config || !config->path || strlen(config->path) >= sizeof(g_devices[0].path)) return EINVAL;
    if (!(config->formats & (FAKE_V4L2_MJPEG | FAKE_V4L2_YUYV)) || (config->formats & ~3u)) return EINVAL;
    if (config->size_count == 0 || config->size_count > FAKE_V4L2_MAX_SIZES) return EINVAL;
    if (config->fps == 0 || config->fps > 1000 || config->jpeg_quality > 100) return EINVAL;
    for (uint32_t i = 0; i < config->size_count; i++) {
        const fake_v4l2_size *s = &config->sizes[i];
        if (s->width < 64 || s->width > 8192 || s->width % 16 || s->height < 16 || s->height > 8192 || s->height % 8)
            return EINVAL;
    }
    pthread_mutex_lock(&g_lock);
    int idx = find_device_locked(config->path);
    if (idx >= 0 && g_devices[idx].stats.open_fds > 0) {
        pthread_mutex_unlock(&g_lock);
        return EBUSY;
    }
    if (idx < 0)
        for (int i = 0; i < FAKE_V4L2_MAX_DEVICES; i++)
            if (!g_devices[i].used) { idx = i; break; }
    if (idx < 0) {
        pthread_mutex_unlock(&g_lock);
        return ENOSPC;
    }
    device *d = &g_devices[idx];
    uint32_t generation = d->generation + 1;
    memset(d, 0, sizeof *d);
    d->used = 1;
    d->generation = generation;
    d->instance = ++g_next_instance;
    snprintf(d->path, sizeof d->path, "%s", config->path);
    snprintf(d->card, sizeof d->card, "%s", config->card ? config->card : "Fake Camera");
    d->formats = config->formats;
    d->size_count = config->size_count;
    memcpy(d->sizes, config->sizes, sizeof d->sizes);
    d->fps = config->fps;
    d->quality = config->jpeg_quality ? config->jpeg_quality : 80;
    d->present = 1;
    uint32_t fmts[2];
    device_formats(d, fmts);
    d->pixelformat = fmts[0];
    d->width = d->sizes[0].width;
    d->height = d->sizes[0].height;
    pthread_mutex_unlock(&g_lock);
    atomic_fetch_add(&g_device_count, 1);
    return 0;
}

static void wake_handles_locked(int dev) {
    for (int i = 0; i < MAX_HANDLES; i++) {
        handle *h = &g_handles[i];
        if (h->used && !h->closed && h->dev == dev) arm_timer(h->fd, 1, 100000000ull);
    }
}

int fake_v4l2_remove(const char *path) {
    pthread_mutex_lock(&g_lock);
    int idx = find_device_locked(path);
    if (idx < 0) {
        pthread_mutex_unlock(&g_lock);
        return ENOENT;
    }
    g_devices[idx].used = 0;
    g_devices[idx].generation++;
    wake_handles_locked(idx);
    pthread_mutex_unlock(&g_lock);
    atomic_fetch_sub(&g_device_count, 1);
    return 0;
}

void fake_v4l2_reset(void) {
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < FAKE_V4L2_MAX_DEVICES; i++) {
        if (!g_devices[i].used) continue;
        g_devices[i].used = 0;
        g_devices[i].generation++;
        wake_handles_locked(i);
        atomic_fetch_sub(&g_device_count, 1);
    }
    pthread_mutex_unlock(&g_lock);
}

int fake_v4l2_set_present(const char *path, int present) {
    pthread_mutex_lock(&g_lock);
    int idx = find_device_locked(path);
    if (idx < 0) {
        pthread_mutex_unlock(&g_lock);
        return ENOENT;
    }
    device *d = &g_devices[idx];
    if (d->present && !present) {
        d->present = 0;
        d->generation++;
        wake_handles_locked(idx);  // a real driver wakes pollers with POLLERR on disconnect
    } else if (!d->present && present) {
        d->present = 1;
    }
    d->stats.present = (uint32_t)d->present;
    pthread_mutex_unlock(&g_lock);
    return 0;
}

uint64_t fake_v4l2_open_fd_count(void) {
    uint64_t n = 0;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < MAX_HANDLES; i++)
        if (g_handles[i].used && !g_handles[i].closed) n++;
    pthread_mutex_unlock(&g_lock);
    return n;
}

int fake_v4l2_get_stats(const char *path, fake_v4l2_stats *out) {
    pthread_mutex_lock(&g_lock);
    int idx = find_device_locked(path);
    if (idx < 0 || !out) {
        pthread_mutex_unlock(&g_lock);
        return ENOENT;
    }
    device *d = &g_devices[idx];
    *out = d->stats;
    out->width = d->width;
    out->height = d->height;
    out->pixelformat = d->pixelformat;
    out->present = (uint32_t)d->present;
    uint64_t mapped = 0;
    uint64_t instance = g_devices[idx].instance;
    pthread_mutex_unlock(&g_lock);
    pthread_mutex_lock(&g_map_lock);
    for (int i = 0; i < MAX_MAPPINGS; i++)
        if (g_mappings[i].addr && g_mappings[i].instance == instance) mapped++;
    pthread_mutex_unlock(&g_map_lock);
    out->mapped_buffers = mapped;
    return 0;
}

// ---------------------------------------------------------------- open / close

/* v4l2-ctl finds out what a node is from /sys/dev/char/MAJOR:MINOR/uevent: serve one. */
static int fake_uevent(const char *path) {
    unsigned major = 0, minor = 0;
    char tail[16] = {0};
    if (strncmp(path, "/sys/dev/char/", 14) != 0 || sscanf(path + 14, "%u:%u/%15s", &major, &minor, tail) != 3 ||
        major != FAKE_MAJOR || minor < FAKE_MINOR_BASE || minor >= FAKE_MINOR_BASE + FAKE_V4L2_MAX_DEVICES ||
        strcmp(tail, "uevent") != 0)
        return -2;
    pthread_mutex_lock(&g_lock);
    const device *d = &g_devices[minor - FAKE_MINOR_BASE];
    char text[400];
    int len = -1;
    if (d->used && d->present) {
        const char *name = strrchr(d->path, '/');
        len = snprintf(text, sizeof text, "MAJOR=%u\nMINOR=%u\nDEVNAME=%s\n", major, minor, name ? name + 1 : d->path);
    }
    pthread_mutex_unlock(&g_lock);
    if (len < 0) return -2;
    int fd = memfd_create("fake-v4l2-uevent", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (write(fd, text, (size_t)len) != len || lseek(fd, 0, SEEK_SET) != 0) {
        real_close(fd);
        errno = EIO;
        return -1;
    }
    return fd;
}

/* Returns -2 when path is not a fake device (the caller passes through). */
static int fake_open(const char *path, int flags) {
    if (atomic_load_explicit(&g_device_count, memory_order_acquire) == 0 || !path) return -2;
    if (path[0] == '/' && path[1] == 's') return fake_uevent(path);
    pthread_mutex_lock(&g_lock);
    int idx = find_device_locked(path);
    if (idx < 0) {
        pthread_mutex_unlock(&g_lock);
        return -2;
    }
    device *d = &g_devices[idx];
    d->stats.open_attempts++;
    if (!d->present) {
        pthread_mutex_unlock(&g_lock);
        errno = ENOENT;
        return -1;
    }
    handle *h = NULL;
    for (int i = 0; i < MAX_HANDLES; i++)
        if (!g_handles[i].used) { h = &g_handles[i]; break; }
    if (!h) {
        pthread_mutex_unlock(&g_lock);
        errno = EMFILE;
        return -1;
    }
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | ((flags & O_CLOEXEC) ? TFD_CLOEXEC : 0));
    if (fd < 0 || fd >= FD_TABLE) {
        int e = fd < 0 ? errno : EMFILE;
        if (fd >= 0) real_close(fd);
        pthread_mutex_unlock(&g_lock);
        errno = e;
        return -1;
    }
    // A stale entry for this fd number (closed behind our back) must not shadow the new one.
    for (int i = 0; i < MAX_HANDLES; i++)
        if (g_handles[i].used && !g_handles[i].closed && g_handles[i].fd == fd) {
            g_handles[i].closed = 1;
            g_handles[i].streaming = 0;
            if (g_handles[i].busy == 0) {
                free_buffers_locked(&g_handles[i]);
                g_handles[i].used = 0;
                atomic_fetch_sub(&g_handle_count, 1);
            }
        }
    memset(h, 0, sizeof *h);
    h->used = 1;
    h->fd = fd;
    h->dev = idx;
    h->generation = d->generation;
    h->instance = d->instance;
    atomic_fetch_add(&g_handle_count, 1);
    h->nonblock = (flags & O_NONBLOCK) != 0;
    h->memfd = -1;
    d->stats.opens++;
    d->stats.open_fds++;
    atomic_store_explicit(&g_fake_fd[fd], 1, memory_order_release);
    pthread_mutex_unlock(&g_lock);
    return fd;
}

/* Frees a closed handle (its fd is already closed: never touch it here). */
static void release_handle_locked(handle *h) {
    free_buffers_locked(h);
    h->used = 0;
    atomic_fetch_sub(&g_handle_count, 1);
}

static int fake_close(int fd) {
    pthread_mutex_lock(&g_lock);
    handle *h = find_handle_locked(fd);
    if (!h) {
        pthread_mutex_unlock(&g_lock);
        return -2;
    }
    atomic_store_explicit(&g_fake_fd[fd], 0, memory_order_release);
    stats_of_locked(h)->open_fds--;
    stop_streaming_locked(h);
    h->closed = 1;
    if (h->busy == 0) release_handle_locked(h);
    int rc = real_close(fd);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

// ---------------------------------------------------------------- capture

/* Produces the frames that are due by now: each takes the oldest queued buffer or, when
 * none is queued, is dropped (a gap in the sequence, as a real driver does). Buffers to
 * draw are marked FILLING; the drawing happens outside the lock. */
typedef struct pending_fill { uint32_t index, sequence; uint64_t timestamp_ns; } pending_fill;

static uint32_t produce_due_locked(handle *h, pending_fill *fills) {
    device *d = &g_devices[h->dev];
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    if (now < h->start_ns + h->period_ns) return 0;
    uint64_t due = (now - h->start_ns) / h->period_ns;
    uint32_t n = 0;
    if (due > h->produced + 4096) {  // a long stall: skip ahead instead of looping
        uint64_t skipped = due - h->produced - 4096;
        d->stats.frames_produced += skipped;
        d->stats.frames_dropped += skipped;
        h->produced += skipped;
    }
    while (h->produced < due) {
        uint64_t seq = h->produced++;
        d->stats.frames_produced++;
        if (h->qcount == 0) {
            d->stats.frames_dropped++;
            continue;
        }
        uint32_t index = h->queue[h->qhead];
        h->qhead = (h->qhead + 1) % MAX_BUFFERS;
        h->qcount--;
        h->bufs[index].state = BUF_FILLING;
        fills[n].index = index;
        fills[n].sequence = (uint32_t)seq;
        fills[n].timestamp_ns = h->start_ns + (seq + 1) * h->period_ns;
        n++;
    }
    return n;
}

/* What to draw, captured under the lock; the handle is kept alive by busy. */
typedef struct fill_job {
    uint32_t n, width, height, fourcc, sizeimage;
    int quality;
    uint8_t *map;
    size_t stride;
    pending_fill fills[MAX_BUFFERS];
} fill_job;

static void begin_fill_locked(handle *h, fill_job *job) {
    job->n = produce_due_locked(h, job->fills);
    if (job->n == 0) return;
    const device *d = &g_devices[h->dev];
    job->width = d->width;
    job->height = d->height;
    job->fourcc = d->pixelformat;
    job->quality = (int)d->quality;
    job->map = h->map;
    job->stride = h->buf_stride;
    job->sizeimage = h->sizeimage;
    h->busy++;
}

/* Draws outside the lock, then publishes the filled buffers. Returns 0 if the handle was
 * closed meanwhile (and freed here when it was the last user). */
static int finish_fill(handle *h, const fill_job *job) {
    if (job->n == 0) return 1;
    uint64_t cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    uint32_t used[MAX_BUFFERS];
    for (uint32_t i = 0; i < job->n; i++) {
        uint8_t *dst = job->map + job->stride * job->fills[i].index;
        used[i] = (uint32_t)draw_frame(dst, job->sizeimage, job->width, job->height, job->fourcc,
                                       job->fills[i].sequence, job->quality);
    }
    uint64_t cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;

    pthread_mutex_lock(&g_lock);
    fake_v4l2_stats *st = stats_of_locked(h);
    st->generate_ns += cpu;
    h->busy--;
    if (h->closed) {
        if (h->busy == 0) release_handle_locked(h);
        pthread_mutex_unlock(&g_lock);
        return 0;
    }
    for (uint32_t i = 0; i < job->n; i++) {
        buffer *b = &h->bufs[job->fills[i].index];
        if (b->state != BUF_FILLING) continue;  // STREAMOFF meanwhile
        b->state = BUF_DONE;
        b->bytesused = used[i];
        b->sequence = job->fills[i].sequence;
        b->timestamp_ns = job->fills[i].timestamp_ns;
        st->frames_filled++;
        h->done[(h->dhead + h->dcount) % MAX_BUFFERS] = job->fills[i].index;
        h->dcount++;
    }
    pthread_mutex_unlock(&g_lock);
    return 1;
}

static void describe_buffer_locked(const handle *h, uint32_t index, struct v4l2_buffer *b) {
    const buffer *buf = &h->bufs[index];
    uint32_t type = b->type;
    memset(b, 0, sizeof *b);
    b->index = index;
    b->type = type;
    b->memory = V4L2_MEMORY_MMAP;
    b->m.offset = (uint32_t)(h->buf_stride * index);
    b->length = h->sizeimage;
    b->field = V4L2_FIELD_NONE;
    b->flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC | V4L2_BUF_FLAG_TSTAMP_SRC_EOF;
    if (buf->state == BUF_QUEUED || buf->state == BUF_FILLING) b->flags |= V4L2_BUF_FLAG_QUEUED;
    if (buf->state == BUF_DONE) b->flags |= V4L2_BUF_FLAG_DONE;
    b->bytesused = buf->bytesused;
    b->sequence = buf->sequence;
    b->timestamp.tv_sec = (time_t)(buf->timestamp_ns / 1000000000ull);
    b->timestamp.tv_usec = (suseconds_t)((buf->timestamp_ns % 1000000000ull) / 1000);
}

static int fake_dqbuf(int fd, struct v4l2_buffer *b) {
    for (;;) {
        fill_job job;
        pthread_mutex_lock(&g_lock);
        handle *h = find_handle_locked(fd);
        if (!h) { pthread_mutex_unlock(&g_lock); return EBADF; }
        if (!handle_alive_locked(h)) { pthread_mutex_unlock(&g_lock); return ENODEV; }
        if (!h->streaming) { pthread_mutex_unlock(&g_lock); return EINVAL; }
        drain_timer(fd);
        begin_fill_locked(h, &job);
        pthread_mutex_unlock(&g_lock);
        if (!finish_fill(h, &job)) return EBADF;

        pthread_mutex_lock(&g_lock);
        h = find_handle_locked(fd);
        if (!h) { pthread_mutex_unlock(&g_lock); return EBADF; }
        if (!handle_alive_locked(h)) { pthread_mutex_unlock(&g_lock); return ENODEV; }
        if (h->dcount > 0) {
            uint32_t index = h->done[h->dhead];
            h->dhead = (h->dhead + 1) % MAX_BUFFERS;
            h->dcount--;
            describe_buffer_locked(h, index, b);
            h->bufs[index].state = BUF_APP;
            stats_of_locked(h)->frames_dequeued++;
            stats_of_locked(h)->last_sequence = h->bufs[index].sequence;
            // More filled buffers wait: make poll report readable now, keeping the tick phase.
            if (h->dcount > 0) arm_timer(fd, h->start_ns + h->produced * h->period_ns, h->period_ns);
            pthread_mutex_unlock(&g_lock);
            return 0;
        }
        int nonblock = h->nonblock;
        pthread_mutex_unlock(&g_lock);
        if (nonblock) return EAGAIN;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 200);
    }
}

static ssize_t fake_read_frame(int fd, void *dst, size_t len) {
    for (;;) {
        pthread_mutex_lock(&g_lock);
        handle *h = find_handle_locked(fd);
        if (!h) { pthread_mutex_unlock(&g_lock); errno = EBADF; return -1; }
        if (!handle_alive_locked(h)) { pthread_mutex_unlock(&g_lock); errno = ENODEV; return -1; }
        if (h->streaming || h->nbufs) { pthread_mutex_unlock(&g_lock); errno = EBUSY; return -1; }
        device *d = &g_devices[h->dev];
        if (!h->reading) {
            h->reading = 1;
            h->period_ns = 1000000000ull / d->fps;
            h->start_ns = now_ns(CLOCK_MONOTONIC);
            h->produced = 0;
            arm_timer(fd, h->start_ns + h->period_ns, h->period_ns);
        }
        drain_timer(fd);
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        uint64_t due = now >= h->start_ns + h->period_ns ? (now - h->start_ns) / h->period_ns : 0;
        if (due > h->produced) {
            // read() returns the newest frame; older ones due meanwhile are dropped.
            uint64_t seq = due - 1;
            d->stats.frames_produced += due - h->produced;
            d->stats.frames_dropped += seq - h->produced;
            h->produced = due;
            uint32_t w = d->width, hh = d->height, fourcc = d->pixelformat;
            int quality = (int)d->quality;
            size_t cap = (size_t)w * hh * 2;
            h->busy++;
            pthread_mutex_unlock(&g_lock);
            uint8_t *frame = malloc(cap);
            uint64_t cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
            size_t n = frame ? draw_frame(frame, cap, w, hh, fourcc, (uint32_t)seq, quality) : 0;
            uint64_t cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
            if (n > len) n = len;
            if (n) memcpy(dst, frame, n);
            free(frame);
            pthread_mutex_lock(&g_lock);
            fake_v4l2_stats *st = stats_of_locked(h);
            st->generate_ns += cpu;
            st->frames_filled++;
            st->frames_dequeued++;
            st->last_sequence = seq;
            h->busy--;
            if (h->closed && h->busy == 0) release_handle_locked(h);
            pthread_mutex_unlock(&g_lock);
            if (!n) { errno = EIO; return -1; }
            return (ssize_t)n;
        }
        int nonblock = h->nonblock;
        pthread_mutex_unlock(&g_lock);
        if (nonblock) { errno = EAGAIN; return -1; }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 200);
    }
}

// ---------------------------------------------------------------- ioctl

static void fill_format(const device *d, uint32_t fourcc, uint32_t w, uint32_t h, struct v4l2_pix_format *p) {
    memset(p, 0, sizeof *p);
    p->width = w;
    p->height = h;
    p->pixelformat = fourcc;
    p->field = V4L2_FIELD_NONE;
    p->bytesperline = fourcc == V4L2_PIX_FMT_YUYV ? w * 2 : 0;
    p->sizeimage = w * h * 2;
    p->colorspace = fourcc == V4L2_PIX_FMT_YUYV ? V4L2_COLORSPACE_SRGB : V4L2_COLORSPACE_JPEG;
    (void)d;
}

static void try_format(const device *d, struct v4l2_pix_format *p) {
    uint32_t fourcc = device_supports(d, p->pixelformat) ? p->pixelformat : d->pixelformat;
    uint32_t best = 0;
    uint64_t best_cost = UINT64_MAX;
    for (uint32_t i = 0; i < d->size_count; i++) {
        int64_t dw = (int64_t)d->sizes[i].width - p->width, dh = (int64_t)d->sizes[i].height - p->height;
        uint64_t cost = (uint64_t)(dw < 0 ? -dw : dw) + (uint64_t)(dh < 0 ? -dh : dh);
        if (cost < best_cost) { best_cost = cost; best = i; }
    }
    fill_format(d, fourcc, d->sizes[best].width, d->sizes[best].height, p);
}

static int do_ioctl_locked(handle *h, unsigned long request, void *arg) {
    device *d = &g_devices[h->dev];
    if (!handle_alive_locked(h)) return ENODEV;
    if (!arg && request != VIDIOC_LOG_STATUS) return EFAULT;
    switch (request) {
    case VIDIOC_QUERYCAP: {
        struct v4l2_capability *cap = arg;
        memset(cap, 0, sizeof *cap);
        snprintf((char *)cap->driver, sizeof cap->driver, "fake_v4l2");
        snprintf((char *)cap->card, sizeof cap->card, "%s", d->card);
        snprintf((char *)cap->bus_info, sizeof cap->bus_info, "platform:fake-v4l2-%d", h->dev);
        cap->version = (6u << 16) | (1u << 8);
        cap->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING | V4L2_CAP_READWRITE;
        cap->capabilities = cap->device_caps | V4L2_CAP_DEVICE_CAPS;
        return 0;
    }
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *f = arg;
        uint32_t fmts[2];
        int n = device_formats(d, fmts);
        if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || f->index >= (uint32_t)n) return EINVAL;
        uint32_t index = f->index, type = f->type;
        memset(f, 0, sizeof *f);
        f->index = index;
        f->type = type;
        f->pixelformat = fmts[index];
        if (fmts[index] == V4L2_PIX_FMT_MJPEG) {
            f->flags = V4L2_FMT_FLAG_COMPRESSED;
            snprintf((char *)f->description, sizeof f->description, "Motion-JPEG");
        } else {
            snprintf((char *)f->description, sizeof f->description, "YUYV 4:2:2");
        }
        return 0;
    }
    case VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *s = arg;
        if (!device_supports(d, s->pixel_format) || s->index >= d->size_count) return EINVAL;
        s->type = V4L2_FRMSIZE_TYPE_DISCRETE;
        s->discrete.width = d->sizes[s->index].width;
        s->discrete.height = d->sizes[s->index].height;
        memset(s->reserved, 0, sizeof s->reserved);
        return 0;
    }
    case VIDIOC_ENUM_FRAMEINTERVALS: {
        struct v4l2_frmivalenum *iv = arg;
        if (!device_supports(d, iv->pixel_format) || iv->index != 0) return EINVAL;
        int found = 0;
        for (uint32_t i = 0; i < d->size_count; i++)
            if (d->sizes[i].width == iv->width && d->sizes[i].height == iv->height) found = 1;
        if (!found) return EINVAL;
        iv->type = V4L2_FRMIVAL_TYPE_DISCRETE;
        iv->discrete.numerator = 1;
        iv->discrete.denominator = d->fps;
        memset(iv->reserved, 0, sizeof iv->reserved);
        return 0;
    }
    case VIDIOC_G_FMT: {
        struct v4l2_format *f = arg;
        if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        fill_format(d, d->pixelformat, d->width, d->height, &f->fmt.pix);
        return 0;
    }
    case VIDIOC_TRY_FMT:
    case VIDIOC_S_FMT: {
        struct v4l2_format *f = arg;
        if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        if (request == VIDIOC_S_FMT && (h->nbufs || h->streaming || h->reading)) return EBUSY;
        try_format(d, &f->fmt.pix);
        if (request == VIDIOC_S_FMT) {
            d->pixelformat = f->fmt.pix.pixelformat;
            d->width = f->fmt.pix.width;
            d->height = f->fmt.pix.height;
        }
        return 0;
    }
    case VIDIOC_G_PARM:
    case VIDIOC_S_PARM: {
        struct v4l2_streamparm *p = arg;
        if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        memset(&p->parm, 0, sizeof p->parm);
        p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        p->parm.capture.timeperframe.numerator = 1;
        p->parm.capture.timeperframe.denominator = d->fps;  // the one rate it offers
        p->parm.capture.readbuffers = 2;
        return 0;
    }
    case VIDIOC_ENUMINPUT: {
        struct v4l2_input *in = arg;
        if (in->index != 0) return EINVAL;
        memset(in, 0, sizeof *in);
        snprintf((char *)in->name, sizeof in->name, "Camera 1");
        in->type = V4L2_INPUT_TYPE_CAMERA;
        return 0;
    }
    case VIDIOC_G_INPUT: *(int *)arg = 0; return 0;
    case VIDIOC_S_INPUT: return *(int *)arg == 0 ? 0 : EINVAL;
    case VIDIOC_REQBUFS: {
        struct v4l2_requestbuffers *r = arg;
        if (r->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || r->memory != V4L2_MEMORY_MMAP) return EINVAL;
        if (h->streaming || h->reading) return EBUSY;
        free_buffers_locked(h);
        memset(r->reserved, 0, sizeof r->reserved);
        r->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP;
        if (r->count == 0) return 0;
        uint32_t count = r->count < 2 ? 2 : r->count > MAX_BUFFERS ? MAX_BUFFERS : r->count;
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        struct v4l2_pix_format p;
        fill_format(d, d->pixelformat, d->width, d->height, &p);
        size_t stride = ((size_t)p.sizeimage + page - 1) / page * page;
        int memfd = memfd_create("fake-v4l2", MFD_CLOEXEC);
        if (memfd < 0) return errno;
        if (ftruncate(memfd, (off_t)(stride * count)) != 0) {
            int e = errno;
            real_close(memfd);
            return e;
        }
        uint8_t *map = real_mmap(NULL, stride * count, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            real_close(memfd);
            return e;
        }
        h->memfd = memfd;
        h->map = map;
        h->nbufs = count;
        h->buf_stride = stride;
        h->sizeimage = p.sizeimage;
        for (uint32_t i = 0; i < count; i++) memset(&h->bufs[i], 0, sizeof h->bufs[i]);
        r->count = count;
        return 0;
    }
    case VIDIOC_QUERYBUF: {
        struct v4l2_buffer *b = arg;
        if (b->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || b->index >= h->nbufs) return EINVAL;
        describe_buffer_locked(h, b->index, b);
        return 0;
    }
    case VIDIOC_QBUF: {
        struct v4l2_buffer *b = arg;
        if (b->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || b->memory != V4L2_MEMORY_MMAP || b->index >= h->nbufs)
            return EINVAL;
        if (h->bufs[b->index].state != BUF_APP) return EINVAL;
        h->bufs[b->index].state = BUF_QUEUED;
        h->queue[(h->qhead + h->qcount) % MAX_BUFFERS] = b->index;
        h->qcount++;
        b->flags = (b->flags | V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_MAPPED) & ~V4L2_BUF_FLAG_DONE;
        return 0;
    }
    case VIDIOC_STREAMON: {
        if (*(int *)arg != V4L2_BUF_TYPE_VIDEO_CAPTURE || h->nbufs == 0) return EINVAL;
        if (h->streaming) return 0;
        h->streaming = 1;
        h->period_ns = 1000000000ull / d->fps;
        h->start_ns = now_ns(CLOCK_MONOTONIC);
        h->produced = 0;
        d->stats.streaming_fds++;
        arm_timer(h->fd, h->start_ns + h->period_ns, h->period_ns);
        return 0;
    }
    case VIDIOC_STREAMOFF:
        if (*(int *)arg != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        stop_streaming_locked(h);
        return 0;
    case VIDIOC_LOG_STATUS:
        return 0;
    case VIDIOC_QUERYCTRL:
    case VIDIOC_QUERY_EXT_CTRL:
    case VIDIOC_QUERYMENU:
    case VIDIOC_G_CTRL:
    case VIDIOC_S_CTRL:
    case VIDIOC_G_EXT_CTRLS:
    case VIDIOC_S_EXT_CTRLS:
    case VIDIOC_TRY_EXT_CTRLS:
    case VIDIOC_CROPCAP:
    case VIDIOC_G_SELECTION:
    case VIDIOC_S_SELECTION:
        return EINVAL;
    default:
        return ENOTTY;
    }
}

static int fake_ioctl(int fd, unsigned long request, void *arg) {
    if (request == VIDIOC_DQBUF) {
        struct v4l2_buffer *b = arg;
        if (!b) return EFAULT;
        if (b->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || b->memory != V4L2_MEMORY_MMAP) return EINVAL;
        return fake_dqbuf(fd, b);
    }
    pthread_mutex_lock(&g_lock);
    handle *h = find_handle_locked(fd);
    int rc = h ? do_ioctl_locked(h, request, arg) : EBADF;
    pthread_mutex_unlock(&g_lock);
    return rc;
}

// ---------------------------------------------------------------- mmap

static void *fake_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    pthread_mutex_lock(&g_lock);
    handle *h = find_handle_locked(fd);
    if (!h) { pthread_mutex_unlock(&g_lock); errno = EBADF; return MAP_FAILED; }
    if (!handle_alive_locked(h)) { pthread_mutex_unlock(&g_lock); errno = ENODEV; return MAP_FAILED; }
    if (h->nbufs == 0 || offset < 0 || (size_t)offset % h->buf_stride != 0 ||
        (size_t)offset / h->buf_stride >= h->nbufs || length > h->buf_stride) {
        pthread_mutex_unlock(&g_lock);
        errno = EINVAL;
        return MAP_FAILED;
    }
    void *p = real_mmap(addr, length, prot, flags, h->memfd, offset);
    uint64_t instance = h->instance;
    pthread_mutex_unlock(&g_lock);
    if (p == MAP_FAILED) return p;
    pthread_mutex_lock(&g_map_lock);
    for (int i = 0; i < MAX_MAPPINGS; i++) {
        if (!g_mappings[i].addr) {
            g_mappings[i].addr = p;
            g_mappings[i].length = length;
            g_mappings[i].instance = instance;
            atomic_fetch_add(&g_mapping_count, 1);
            break;
        }
    }
    pthread_mutex_unlock(&g_map_lock);
    return p;
}

static void forget_mapping(void *addr) {
    if (atomic_load_explicit(&g_mapping_count, memory_order_acquire) == 0) return;
    pthread_mutex_lock(&g_map_lock);
    for (int i = 0; i < MAX_MAPPINGS; i++) {
        if (g_mappings[i].addr == addr) {
            g_mappings[i].addr = NULL;
            atomic_fetch_sub(&g_mapping_count, 1);
            break;
        }
    }
    pthread_mutex_unlock(&g_map_lock);
}

// ---------------------------------------------------------------- stat / access

/* Returns 1 and fills st when path is a present fake device, -1 with errno when it is a
 * vanished one, 0 when it is not ours. */
static int fake_stat_path(const char *path, struct stat *st) {
    if (atomic_load_explicit(&g_device_count, memory_order_acquire) == 0 || !path) return 0;
    pthread_mutex_lock(&g_lock);
    int idx = find_device_locked(path);
    int present = idx >= 0 && g_devices[idx].present;
    pthread_mutex_unlock(&g_lock);
    if (idx < 0) return 0;
    if (!present) { errno = ENOENT; return -1; }
    if (st) {
        memset(st, 0, sizeof *st);
        st->st_mode = S_IFCHR | 0660;
        st->st_rdev = makedev(FAKE_MAJOR, FAKE_MINOR_BASE + idx);
        st->st_nlink = 1;
        st->st_blksize = 4096;
    }
    return 1;
}

// ---------------------------------------------------------------- interposed libc

static int open_common(const char *path, int flags) {
    resolve();
    return fake_open(path, flags);
}

#define OPEN_MODE(flags, mode)                                     \
    mode_t mode = 0;                                               \
    if ((flags) & (O_CREAT | __O_TMPFILE)) {                       \
        va_list ap;                                                \
        va_start(ap, flags);                                       \
        mode = (mode_t)va_arg(ap, int);                            \
        va_end(ap);                                                \
    }

int open(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    int fd = open_common(path, flags);
    return fd != -2 ? fd : real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    int fd = open_common(path, flags);
    return fd != -2 ? fd : real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    int fd = open_common(path, flags);
    return fd != -2 ? fd : real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    int fd = open_common(path, flags);
    return fd != -2 ? fd : real_openat64(dirfd, path, flags, mode);
}

/* v4l2-ctl reads the uevent file through stdio, which opens files inside glibc. */
FILE *fopen(const char *path, const char *mode) {
    static FILE *(*real_fopen)(const char *, const char *);
    if (!real_fopen) real_fopen = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen");
    resolve();
    if (path && strncmp(path, "/sys/dev/char/", 14) == 0 && mode && mode[0] == 'r' &&
        atomic_load_explicit(&g_device_count, memory_order_acquire) > 0) {
        int fd = fake_uevent(path);
        if (fd >= 0) {
            FILE *f = fdopen(fd, "r");
            if (!f) real_close(fd);
            return f;
        }
    }
    return real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode) { return fopen(path, mode); }

int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat64(dirfd, path, flags); }

int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    resolve();
    if (!fd_is_fake(fd)) return real_ioctl(fd, request, arg);
    int rc = fake_ioctl(fd, request, arg);
    if (rc == EBADF && !fd_is_fake(fd)) return real_ioctl(fd, request, arg);
    if (rc) { errno = rc; return -1; }
    return 0;
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    resolve();
    if (!fd_is_fake(fd)) return real_mmap(addr, length, prot, flags, fd, offset);
    return fake_mmap(addr, length, prot, flags, fd, offset);
}

void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    resolve();
    if (!fd_is_fake(fd)) return real_mmap64(addr, length, prot, flags, fd, offset);
    return fake_mmap(addr, length, prot, flags, fd, offset);
}

int munmap(void *addr, size_t length) {
    resolve();
    int rc = real_munmap(addr, length);
    if (rc == 0) forget_mapping(addr);
    return rc;
}

ssize_t read(int fd, void *buf, size_t count) {
    resolve();
    if (!fd_is_fake(fd)) return real_read(fd, buf, count);
    return fake_read_frame(fd, buf, count);
}

int close(int fd) {
    resolve();
    if (!fd_is_fake(fd)) return real_close(fd);
    int rc = fake_close(fd);
    return rc != -2 ? rc : real_close(fd);
}

int stat(const char *path, struct stat *st) {
    resolve();
    int r = fake_stat_path(path, st);
    return r == 0 ? real_stat(path, st) : r < 0 ? -1 : 0;
}

int stat64(const char *path, struct stat64 *st) { return stat(path, (struct stat *)st); }

int lstat(const char *path, struct stat *st) {
    resolve();
    int r = fake_stat_path(path, st);
    return r == 0 ? real_lstat(path, st) : r < 0 ? -1 : 0;
}

int lstat64(const char *path, struct stat64 *st) { return lstat(path, (struct stat *)st); }

int fstat(int fd, struct stat *st) {
    resolve();
    if (!fd_is_fake(fd)) return real_fstat(fd, st);
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&g_lock);
    handle *h = find_handle_locked(fd);
    int dev = h ? h->dev : 0;
    pthread_mutex_unlock(&g_lock);
    st->st_mode = S_IFCHR | 0660;
    st->st_rdev = makedev(FAKE_MAJOR, FAKE_MINOR_BASE + dev);
    st->st_nlink = 1;
    return 0;
}

int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }

int access(const char *path, int mode) {
    resolve();
    int r = fake_stat_path(path, NULL);
    return r == 0 ? real_access(path, mode) : r < 0 ? -1 : 0;
}

/* libv4l2 and libv4lconvert call syscall() directly (SYS_openat, SYS_ioctl, SYS_mmap,
 * SYS_close, SYS_read, SYS_munmap). Everything else is forwarded with six arguments, as
 * glibc's own syscall() reads them. */
long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    long (*sc)(long, ...) = __atomic_load_n(&real_syscall, __ATOMIC_ACQUIRE);
    if (!sc) { resolve(); sc = real_syscall; }
    if (atomic_load_explicit(&g_device_count, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&g_handle_count, memory_order_relaxed) == 0 && number != SYS_munmap)
        return sc(number, a1, a2, a3, a4, a5, a6);
    switch (number) {
#ifdef SYS_open
    case SYS_open: {
        int fd = fake_open((const char *)a1, (int)a2);
        return fd != -2 ? fd : sc(number, a1, a2, a3, a4, a5, a6);
    }
#endif
    case SYS_openat: {
        int fd = fake_open((const char *)a2, (int)a3);
        return fd != -2 ? fd : sc(number, a1, a2, a3, a4, a5, a6);
    }
    case SYS_ioctl:
        if (fd_is_fake((int)a1)) {
            int rc = fake_ioctl((int)a1, (unsigned long)a2, (void *)a3);
            if (rc) { errno = rc; return -1; }
            return 0;
        }
        break;
    case SYS_mmap:
        if (fd_is_fake((int)a5)) return (long)fake_mmap((void *)a1, (size_t)a2, (int)a3, (int)a4, (int)a5, (off_t)a6);
        break;
    case SYS_munmap: {
        long rc = sc(number, a1, a2, a3, a4, a5, a6);
        if (rc == 0) forget_mapping((void *)a1);
        return rc;
    }
    case SYS_read:
        if (fd_is_fake((int)a1)) return fake_read_frame((int)a1, (void *)a2, (size_t)a3);
        break;
    case SYS_close:
        if (fd_is_fake((int)a1)) {
            int rc = fake_close((int)a1);
            if (rc != -2) return rc;
        }
        break;
    default:
        break;
    }
    return sc(number, a1, a2, a3, a4, a5, a6);
}

// ---------------------------------------------------------------- LD_PRELOAD configuration

__attribute__((constructor)) static void fake_v4l2_from_environment(void) {
    resolve();
    const char *path = getenv("FAKE_V4L2_DEVICE");
    if (!path || !*path) return;
    fake_v4l2_config c;
    memset(&c, 0, sizeof c);
    c.path = path;
    const char *formats = getenv("FAKE_V4L2_FORMATS");
    if (!formats || strstr(formats, "MJPG") || strstr(formats, "MJPEG")) c.formats |= FAKE_V4L2_MJPEG;
    if (!formats || strstr(formats, "YUYV")) c.formats |= FAKE_V4L2_YUYV;
    const char *sizes = getenv("FAKE_V4L2_SIZES");
    if (!sizes) sizes = "640x480,1280x720";
    while (*sizes && c.size_count < FAKE_V4L2_MAX_SIZES) {
        unsigned w = 0, h = 0;
        if (sscanf(sizes, "%ux%u", &w, &h) != 2) break;
        c.sizes[c.size_count].width = w;
        c.sizes[c.size_count].height = h;
        c.size_count++;
        const char *comma = strchr(sizes, ',');
        if (!comma) break;
        sizes = comma + 1;
    }
    const char *fps = getenv("FAKE_V4L2_FPS");
    c.fps = fps ? (uint32_t)atoi(fps) : 30;
    int rc = fake_v4l2_add(&c);
    if (rc) fprintf(stderr, "fake_v4l2: cannot configure %s: %s\n", path, strerror(rc));
}
