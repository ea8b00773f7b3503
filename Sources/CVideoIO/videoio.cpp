// Video files, RTSP streams and image files through OpenCV alone, behind the plain C API of
// cvideoio.h. Every entry point runs inside guarded(): no C++ exception crosses the header.

#include "cvideoio.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

thread_local std::string g_error;

vio_status fail(vio_status status, const std::string &message) {
    g_error = message;
    return status;
}

/// Runs `body`, turning every C++ exception into a status and a message.
template <typename F>
vio_status guarded(const char *operation, F &&body) noexcept {
    try {
        g_error.clear();
        return body();
    } catch (const cv::Exception &e) {
        return fail(VIO_ERR_INTERNAL, std::string(operation) + ": OpenCV: " + e.what());
    } catch (const std::bad_alloc &) {
        return fail(VIO_ERR_INTERNAL, std::string(operation) + ": out of memory");
    } catch (const std::exception &e) {
        return fail(VIO_ERR_INTERNAL, std::string(operation) + ": " + e.what());
    } catch (...) {
        return fail(VIO_ERR_INTERNAL, std::string(operation) + ": unknown C++ exception");
    }
}

bool valid_bgr(const uint8_t *bgr, int32_t width, int32_t height, size_t row_stride) {
    return bgr && width > 0 && height > 0 && row_stride >= size_t(width) * 3;
}

}  // namespace

extern "C" const char *vio_last_error(void) { return g_error.c_str(); }

// ------------------------------------------------------------------ reading

struct vio_reader {
    cv::VideoCapture cap;
    // An MJPEG stream read as its packets (OpenCV's raw mode): each one a whole JPEG picture of this size,
    // decoded by the caller only as far as it needs (CJPEG), instead of FFmpeg decoding and converting all.
    bool jpeg_packets = false;
    int32_t width = 0, height = 0;
};

struct vio_frame {
    cv::Mat mat;
    bool jpeg = false;
    int32_t width = 0, height = 0;
};

extern "C" vio_status vio_reader_open(const char *url, vio_reader **out) {
    return guarded("open video", [&]() -> vio_status {
        if (!url || !out) return fail(VIO_ERR_ARGUMENT, "null argument");
        *out = nullptr;
        std::string u(url);
        bool network = u.rfind("rtsp://", 0) == 0 || u.rfind("rtsps://", 0) == 0 || u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0;
        if (network) {
            // RTSP over TCP: UDP loses packets on school networks and smears frames. Set once:
            // setenv while other cameras' threads read the environment is not safe.
            static const bool tcp_set = [] { return setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp", 0) == 0; }();
            (void)tcp_set;
        } else {
            struct stat st;
            if (stat(url, &st) != 0) return fail(VIO_ERR_IO, std::string(url) + ": " + std::strerror(errno));
            if (S_ISDIR(st.st_mode)) return fail(VIO_ERR_IO, std::string(url) + ": is a directory");
        }
        auto v = std::make_unique<vio_reader>();
        // A stalled stream must not block a read for long (shutdown waits for it): 3 s to open,
        // 2 s per read, then the source reconnects.
        const std::vector<int> timeouts = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, 3000, cv::CAP_PROP_READ_TIMEOUT_MSEC, 2000};
        if (!v->cap.open(u, cv::CAP_FFMPEG, timeouts) && !network) v->cap.open(u, cv::CAP_ANY);
        if (!v->cap.isOpened()) return fail(VIO_ERR_VIDEO, "cannot open " + u);
        const int fourcc = int(v->cap.get(cv::CAP_PROP_FOURCC));
        const bool mjpeg = fourcc == cv::VideoWriter::fourcc('M', 'J', 'P', 'G') || fourcc == cv::VideoWriter::fourcc('m', 'j', 'p', 'g');
        const double w = v->cap.get(cv::CAP_PROP_FRAME_WIDTH), h = v->cap.get(cv::CAP_PROP_FRAME_HEIGHT);
        if (mjpeg && v->cap.getBackendName() == "FFMPEG" && w >= 1 && h >= 1 && w < 1e5 && h < 1e5 &&
            v->cap.set(cv::CAP_PROP_FORMAT, -1)) {
            v->jpeg_packets = true;
            v->width = int32_t(w);
            v->height = int32_t(h);
        }
        *out = v.release();
        return VIO_OK;
    });
}

extern "C" vio_status vio_reader_read(vio_reader *reader, vio_frame **out) {
    return guarded("read video", [&]() -> vio_status {
        if (!reader || !out) return fail(VIO_ERR_ARGUMENT, "null argument");
        *out = nullptr;
        cv::Mat frame;
        if (!reader->cap.read(frame) || frame.empty()) return fail(VIO_ERR_END, "end of stream");
        if (reader->jpeg_packets) {
            // The packet's bytes (OpenCV's buffer is reused by the next read: copied).
            cv::Mat bytes = frame.reshape(1, 1).clone();
            *out = new vio_frame{bytes, true, reader->width, reader->height};
            return VIO_OK;
        }
        if (frame.type() == CV_8UC1) cv::cvtColor(frame, frame, cv::COLOR_GRAY2BGR);
        else if (frame.type() == CV_8UC4) cv::cvtColor(frame, frame, cv::COLOR_BGRA2BGR);
        if (frame.type() != CV_8UC3) return fail(VIO_ERR_VIDEO, "unsupported frame type");
        if (!frame.isContinuous()) frame = frame.clone();
        *out = new vio_frame{frame, false, frame.cols, frame.rows};
        return VIO_OK;
    });
}

extern "C" double vio_reader_fps(const vio_reader *reader) {
    if (!reader) return 0;
    try {
        double fps = const_cast<vio_reader *>(reader)->cap.get(cv::CAP_PROP_FPS);
        return std::isfinite(fps) && fps > 0 && fps < 1000 ? fps : 0;
    } catch (...) { return 0; }
}

extern "C" int64_t vio_reader_frame_count(const vio_reader *reader) {
    if (!reader) return -1;
    try {
        double n = const_cast<vio_reader *>(reader)->cap.get(cv::CAP_PROP_FRAME_COUNT);
        return std::isfinite(n) && n > 0 ? int64_t(n) : -1;
    } catch (...) { return -1; }
}

extern "C" void vio_reader_free(vio_reader *reader) {
    try { delete reader; } catch (...) {}
}

extern "C" int32_t vio_frame_width(const vio_frame *frame) { return frame ? frame->width : 0; }
extern "C" int32_t vio_frame_height(const vio_frame *frame) { return frame ? frame->height : 0; }
extern "C" int vio_frame_is_jpeg(const vio_frame *frame) { return frame && frame->jpeg ? 1 : 0; }
extern "C" const uint8_t *vio_frame_data(const vio_frame *frame) { return frame ? frame->mat.data : nullptr; }
extern "C" size_t vio_frame_size(const vio_frame *frame) { return frame ? frame->mat.total() * frame->mat.elemSize() : 0; }
extern "C" void vio_frame_free(vio_frame *frame) {
    try { delete frame; } catch (...) {}
}

// ------------------------------------------------------------------ thumbnails

extern "C" vio_status vio_grey_thumbnail(const uint8_t *bgr, int32_t width, int32_t height, size_t row_stride,
                                         int32_t thumb_width, int32_t thumb_height, uint8_t *out, size_t capacity) {
    return guarded("grey thumbnail", [&]() -> vio_status {
        if (!valid_bgr(bgr, width, height, row_stride) || !out || thumb_width <= 0 || thumb_height <= 0 ||
            thumb_width > width || thumb_height > height || capacity < size_t(thumb_width) * size_t(thumb_height))
            return fail(VIO_ERR_ARGUMENT, "bad size");
        const cv::Mat src(height, width, CV_8UC3, const_cast<uint8_t *>(bgr), row_stride);
        cv::Mat small;
        cv::resize(src, small, cv::Size(thumb_width, thumb_height), 0, 0, cv::INTER_AREA);
        cv::Mat grey(thumb_height, thumb_width, CV_8UC1, out);
        cv::cvtColor(small, grey, cv::COLOR_BGR2GRAY);
        if (grey.data != out) return fail(VIO_ERR_INTERNAL, "grey thumbnail: OpenCV reallocated the output");
        return VIO_OK;
    });
}

// ------------------------------------------------------------------ writing

struct vio_writer {
    cv::VideoWriter writer;
    cv::Size size;
};

extern "C" vio_status vio_writer_open(const char *path, double fps, int32_t width, int32_t height, vio_writer **out) {
    return guarded("open video writer", [&]() -> vio_status {
        if (!path || !out || fps <= 0 || width <= 0 || height <= 0) return fail(VIO_ERR_ARGUMENT, "bad argument");
        *out = nullptr;
        auto w = std::make_unique<vio_writer>();
        w->size = cv::Size(width, height);
        std::string p(path);
        bool avi = p.size() >= 4 && p.compare(p.size() - 4, 4, ".avi") == 0;
        int fourcc = cv::VideoWriter::fourcc('M', 'J', 'P', 'G');
        if (avi) w->writer.open(p, cv::CAP_OPENCV_MJPEG, fourcc, fps, w->size);
        else w->writer.open(p, cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), fps, w->size);
        if (!w->writer.isOpened()) return fail(VIO_ERR_VIDEO, "cannot write video " + p);
        *out = w.release();
        return VIO_OK;
    });
}

extern "C" vio_status vio_writer_write(vio_writer *writer, const uint8_t *bgr, int32_t width, int32_t height, size_t row_stride) {
    return guarded("write video", [&]() -> vio_status {
        if (!writer || !valid_bgr(bgr, width, height, row_stride)) return fail(VIO_ERR_ARGUMENT, "bad argument");
        if (cv::Size(width, height) != writer->size) return fail(VIO_ERR_ARGUMENT, "frame size differs from the video's");
        cv::Mat view(height, width, CV_8UC3, const_cast<uint8_t *>(bgr), row_stride);
        writer->writer.write(view);
        return VIO_OK;
    });
}

extern "C" void vio_writer_free(vio_writer *writer) {
    try { delete writer; } catch (...) {}
}

extern "C" vio_status vio_image_write(const char *path, const uint8_t *bgr, int32_t width, int32_t height, size_t row_stride) {
    return guarded("write image", [&]() -> vio_status {
        if (!path || !valid_bgr(bgr, width, height, row_stride)) return fail(VIO_ERR_ARGUMENT, "bad argument");
        std::string p(path);
        auto dot = p.find_last_of('.');
        std::string ext = dot == std::string::npos ? "" : p.substr(dot);
        for (auto &c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
        if (ext != ".jpg" && ext != ".jpeg" && ext != ".png" && ext != ".bmp") return fail(VIO_ERR_ARGUMENT, "use a .jpg, .png or .bmp file name");
        cv::Mat view(height, width, CV_8UC3, const_cast<uint8_t *>(bgr), row_stride);
        std::vector<uint8_t> buf;
        if (!cv::imencode(ext, view, buf)) return fail(VIO_ERR_IO, "cannot encode " + ext);
        std::string tmp = p + ".tmp";
        std::FILE *f = std::fopen(tmp.c_str(), "wb");
        if (!f) return fail(VIO_ERR_IO, std::string(std::strerror(errno)));
        bool ok = std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
        ok = (std::fclose(f) == 0) && ok;
        if (!ok || std::rename(tmp.c_str(), path) != 0) {
            std::remove(tmp.c_str());
            return fail(VIO_ERR_IO, std::string(std::strerror(errno)));
        }
        return VIO_OK;
    });
}
