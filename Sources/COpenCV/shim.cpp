// The face engine: OpenCV (decode, res10 SSD and YuNet detectors) and dlib (HOG box refinement,
// 5-point landmarks, aligned chip, ResNet descriptor) behind the plain C API of cvshim.h.
// Every entry point runs inside guarded(): no C++ exception crosses the header.

#include "cvshim.h"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include <dlib/dnn.h>
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <vector>

// ------------------------------------------------------------------ errors

namespace {

thread_local std::string g_error;

cv_status fail(cv_status status, const std::string &message) {
    g_error = message;
    return status;
}

/// Runs `body`, turning every C++ exception into a status and a message.
template <typename F>
cv_status guarded(const char *operation, F &&body) noexcept {
    try {
        g_error.clear();
        return body();
    } catch (const cv::Exception &e) {
        return fail(CV_ERR_INTERNAL, std::string(operation) + ": OpenCV: " + e.what());
    } catch (const dlib::serialization_error &e) {
        return fail(CV_ERR_MODEL, std::string(operation) + ": dlib model: " + e.what());
    } catch (const std::bad_alloc &) {
        return fail(CV_ERR_INTERNAL, std::string(operation) + ": out of memory");
    } catch (const std::exception &e) {
        return fail(CV_ERR_INTERNAL, std::string(operation) + ": " + e.what());
    } catch (...) {
        return fail(CV_ERR_INTERNAL, std::string(operation) + ": unknown C++ exception");
    }
}

}  // namespace

extern "C" const char *cv_last_error(void) { return g_error.c_str(); }

// ------------------------------------------------------------------ images

struct cv_image {
    cv::Mat mat;  // CV_8UC3, continuous
};

namespace {

enum class Format { unknown, jpeg, png, bmp };

struct Header {
    Format format = Format::unknown;
    int64_t width = 0, height = 0;
};

uint32_t be32(const uint8_t *p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
uint16_t be16(const uint8_t *p) { return uint16_t((p[0] << 8) | p[1]); }
int32_t le32(const uint8_t *p) { return int32_t(uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24)); }

/// Reads the image size from the header, without decoding, so a hostile header
/// cannot make the decoder allocate gigabytes.
cv_status sniff(const uint8_t *b, size_t n, Header &h) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (n >= 8 && std::memcmp(b, png_sig, 8) == 0) {
        h.format = Format::png;
        if (n < 24 || std::memcmp(b + 12, "IHDR", 4) != 0) return fail(CV_ERR_DECODE, "truncated PNG header");
        h.width = be32(b + 16);
        h.height = be32(b + 20);
        return CV_OK;
    }
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
        h.format = Format::jpeg;
        size_t i = 2;
        while (i + 4 <= n) {
            if (b[i] != 0xFF) return fail(CV_ERR_DECODE, "corrupt JPEG: bad marker");
            uint8_t marker = b[i + 1];
            if (marker == 0xFF) { i++; continue; }
            if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { i += 2; continue; }
            uint16_t len = be16(b + i + 2);
            bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
            if (sof) {
                if (i + 9 > n) break;
                h.height = be16(b + i + 5);
                h.width = be16(b + i + 7);
                return CV_OK;
            }
            if (marker == 0xDA || marker == 0xD9) break;
            i += 2 + len;
        }
        return fail(CV_ERR_DECODE, "corrupt or truncated JPEG: no frame header");
    }
    if (n >= 26 && b[0] == 'B' && b[1] == 'M') {
        h.format = Format::bmp;
        h.width = std::abs(int64_t(le32(b + 18)));
        h.height = std::abs(int64_t(le32(b + 22)));
        return CV_OK;
    }
    return fail(CV_ERR_DECODE, "not a JPEG, PNG or BMP image");
}

/// libjpeg pads a truncated JPEG with grey and reports success; refuse it instead. The end-of-image
/// marker must come after the start of the scan (an EXIF thumbnail has one of its own); data after
/// it is tolerated (phones append whole videos to "motion photos"), so the whole file is searched.
bool jpeg_complete(const uint8_t *b, size_t n) {
    size_t i = 2, scan = 0;
    while (i + 4 <= n) {
        if (b[i] != 0xFF) return false;
        uint8_t marker = b[i + 1];
        if (marker == 0xFF) { i++; continue; }
        if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { i += 2; continue; }
        if (marker == 0xDA) { scan = i; break; }
        i += 2 + be16(b + i + 2);
    }
    if (scan == 0) return false;
    for (size_t k = n; k >= scan + 4; k--) {
        if (b[k - 2] == 0xFF && b[k - 1] == 0xD9) return true;
    }
    return false;
}

cv_status decode(const uint8_t *bytes, size_t length, int64_t max_pixels, cv_image **out) {
    if (!out) return fail(CV_ERR_ARGUMENT, "null output pointer");
    *out = nullptr;
    if (!bytes || length == 0) return fail(CV_ERR_IO, "empty file");
    if (max_pixels <= 0) max_pixels = CV_DEFAULT_MAX_PIXELS;
    Header h;
    cv_status s = sniff(bytes, length, h);
    if (s != CV_OK) return s;
    if (h.width <= 0 || h.height <= 0) return fail(CV_ERR_DECODE, "image header gives an empty size");
    // Both are below 2^32 here, so the product cannot overflow int64 only if each is checked first.
    if (h.width > INT32_MAX || h.height > INT32_MAX || h.width > max_pixels / h.height) {
        return fail(CV_ERR_TOO_LARGE, "image is " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                                          ", over the limit of " + std::to_string(max_pixels) + " pixels");
    }
    if (h.format == Format::jpeg && !jpeg_complete(bytes, length)) return fail(CV_ERR_DECODE, "truncated JPEG (no end-of-image marker)");
    cv::Mat buf(1, int(length), CV_8UC1, const_cast<uint8_t *>(bytes));
    // IMREAD_COLOR: 16-bit -> 8-bit, gray -> BGR, RGBA -> BGR, and the EXIF orientation applied.
    cv::Mat mat = cv::imdecode(buf, cv::IMREAD_COLOR);
    if (mat.empty()) return fail(CV_ERR_DECODE, "corrupt or truncated image data");
    if (!mat.isContinuous()) mat = mat.clone();
    *out = new cv_image{std::move(mat)};
    return CV_OK;
}

}  // namespace

extern "C" cv_status cv_image_read(const char *path, int64_t max_pixels, cv_image **out) {
    return guarded("read image", [&]() -> cv_status {
        if (!path || !out) return fail(CV_ERR_ARGUMENT, "null argument");
        *out = nullptr;
        struct stat st;
        if (stat(path, &st) != 0) return fail(CV_ERR_IO, std::strerror(errno));
        if (S_ISDIR(st.st_mode)) return fail(CV_ERR_IO, "is a directory");
        if (!S_ISREG(st.st_mode)) return fail(CV_ERR_IO, "not a regular file");
        if (st.st_size == 0) return fail(CV_ERR_IO, "empty file");
        if (st.st_size > (int64_t)512 * 1024 * 1024) return fail(CV_ERR_TOO_LARGE, "file larger than 512 MB");
        std::FILE *f = std::fopen(path, "rb");
        if (!f) return fail(CV_ERR_IO, std::strerror(errno));
        std::vector<uint8_t> data(size_t(st.st_size));
        size_t got = std::fread(data.data(), 1, data.size(), f);
        std::fclose(f);
        if (got != data.size()) return fail(CV_ERR_IO, "short read");
        return decode(data.data(), data.size(), max_pixels, out);
    });
}

extern "C" cv_status cv_image_decode(const uint8_t *bytes, size_t length, int64_t max_pixels, cv_image **out) {
    return guarded("decode image", [&] { return decode(bytes, length, max_pixels, out); });
}

extern "C" cv_status cv_image_from_bgr(const uint8_t *bgr, int32_t width, int32_t height, size_t row_stride, cv_image **out) {
    return guarded("image from BGR", [&]() -> cv_status {
        if (!bgr || !out || width <= 0 || height <= 0 || row_stride < size_t(width) * 3) return fail(CV_ERR_ARGUMENT, "bad BGR buffer");
        cv::Mat view(height, width, CV_8UC3, const_cast<uint8_t *>(bgr), row_stride);
        *out = new cv_image{view.clone()};
        return CV_OK;
    });
}

extern "C" cv_status cv_image_write(const cv_image *image, const char *path) {
    return guarded("write image", [&]() -> cv_status {
        if (!image || !path) return fail(CV_ERR_ARGUMENT, "null argument");
        std::vector<uint8_t> buf;
        std::string p(path);
        std::string ext = p.size() >= 4 ? p.substr(p.find_last_of('.') == std::string::npos ? p.size() : p.find_last_of('.')) : "";
        for (auto &c : ext) c = char(std::tolower(c));
        if (ext != ".jpg" && ext != ".jpeg" && ext != ".png" && ext != ".bmp") return fail(CV_ERR_ARGUMENT, "use a .jpg, .png or .bmp file name");
        if (!cv::imencode(ext, image->mat, buf)) return fail(CV_ERR_IO, "cannot encode " + ext);
        // Write to a temporary name and rename, so a reader never sees half a file.
        std::string tmp = p + ".tmp";
        std::FILE *f = std::fopen(tmp.c_str(), "wb");
        if (!f) return fail(CV_ERR_IO, std::string(std::strerror(errno)));
        bool ok = std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
        ok = (std::fclose(f) == 0) && ok;
        if (!ok || std::rename(tmp.c_str(), path) != 0) {
            std::remove(tmp.c_str());
            return fail(CV_ERR_IO, std::string(std::strerror(errno)));
        }
        return CV_OK;
    });
}

extern "C" cv_status cv_image_resize(const cv_image *image, int32_t width, int32_t height, cv_image **out) {
    return guarded("resize image", [&]() -> cv_status {
        if (!image || !out || width <= 0 || height <= 0) return fail(CV_ERR_ARGUMENT, "bad size");
        cv::Mat dst;
        bool shrink = width < image->mat.cols || height < image->mat.rows;
        cv::resize(image->mat, dst, cv::Size(width, height), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
        *out = new cv_image{dst};
        return CV_OK;
    });
}

extern "C" cv_status cv_image_create(int32_t width, int32_t height, uint8_t b, uint8_t g, uint8_t r, cv_image **out) {
    return guarded("create image", [&]() -> cv_status {
        if (!out || width <= 0 || height <= 0 || int64_t(width) * height > CV_DEFAULT_MAX_PIXELS) return fail(CV_ERR_ARGUMENT, "bad size");
        *out = new cv_image{cv::Mat(height, width, CV_8UC3, cv::Scalar(b, g, r))};
        return CV_OK;
    });
}

extern "C" cv_status cv_image_paste(cv_image *dst, const cv_image *src, int32_t x, int32_t y) {
    return guarded("paste image", [&]() -> cv_status {
        if (!dst || !src) return fail(CV_ERR_ARGUMENT, "null image");
        cv::Rect target(x, y, src->mat.cols, src->mat.rows);
        cv::Rect clipped = target & cv::Rect(0, 0, dst->mat.cols, dst->mat.rows);
        if (clipped.empty()) return CV_OK;
        cv::Rect from(clipped.x - x, clipped.y - y, clipped.width, clipped.height);
        src->mat(from).copyTo(dst->mat(clipped));
        return CV_OK;
    });
}

namespace {
/// An image the shim can work on: 8-bit BGR, not empty.
bool valid(const cv_image *image) { return image && !image->mat.empty() && image->mat.type() == CV_8UC3; }
}  // namespace

extern "C" cv_status cv_image_add_noise(cv_image *image, float sigma, uint64_t seed) {
    return guarded("add noise", [&]() -> cv_status {
        if (!valid(image) || !(sigma >= 0)) return fail(CV_ERR_ARGUMENT, "bad argument");
        if (sigma == 0) return CV_OK;
        cv::RNG rng(seed ? seed : 1);
        cv::Mat noise(image->mat.size(), CV_16SC3);
        rng.fill(noise, cv::RNG::NORMAL, cv::Scalar::all(0), cv::Scalar::all(sigma));
        cv::Mat sum;
        image->mat.convertTo(sum, CV_16SC3);
        sum += noise;
        sum.convertTo(image->mat, CV_8UC3);
        return CV_OK;
    });
}

extern "C" cv_status cv_image_adjust(cv_image *image, float gain, float offset) {
    return guarded("adjust image", [&]() -> cv_status {
        if (!valid(image) || !std::isfinite(gain) || !std::isfinite(offset) || gain < 0) return fail(CV_ERR_ARGUMENT, "bad argument");
        image->mat.convertTo(image->mat, CV_8UC3, gain, offset);
        return CV_OK;
    });
}

extern "C" cv_status cv_image_motion_blur(cv_image *image, int32_t length) {
    return guarded("motion blur", [&]() -> cv_status {
        if (!valid(image) || length > 255) return fail(CV_ERR_ARGUMENT, "bad argument");
        if (length <= 1) return CV_OK;
        cv::Mat kernel = cv::Mat::ones(1, length, CV_32F) / float(length);
        cv::filter2D(image->mat, image->mat, -1, kernel);
        return CV_OK;
    });
}

extern "C" void cv_image_free(cv_image *image) { delete image; }
extern "C" int32_t cv_image_width(const cv_image *image) { return image ? image->mat.cols : 0; }
extern "C" int32_t cv_image_height(const cv_image *image) { return image ? image->mat.rows : 0; }
extern "C" const uint8_t *cv_image_data(const cv_image *image) { return image ? image->mat.data : nullptr; }

// ------------------------------------------------------------------ the dlib networks

namespace facenet {
using namespace dlib;

// The ResNet of dlib's dnn_face_recognition_ex.cpp (dlib_face_recognition_resnet_model_v1.dat).
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual = add_prev1<block<N, BN, 1, tag1<SUBNET>>>;

template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual_down = add_prev2<avg_pool<2, 2, 2, 2, skip1<tag2<block<N, BN, 2, tag1<SUBNET>>>>>>;

template <int N, template <typename> class BN, int stride, typename SUBNET>
using block = BN<con<N, 3, 3, 1, 1, relu<BN<con<N, 3, 3, stride, stride, SUBNET>>>>>;

template <int N, typename SUBNET> using ares = relu<residual<block, N, affine, SUBNET>>;
template <int N, typename SUBNET> using ares_down = relu<residual_down<block, N, affine, SUBNET>>;

template <typename SUBNET> using alevel0 = ares_down<256, SUBNET>;
template <typename SUBNET> using alevel1 = ares<256, ares<256, ares_down<256, SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128, ares<128, ares_down<128, SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64, ares<64, ares<64, ares_down<64, SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32, ares<32, ares<32, SUBNET>>>;

using anet_type = loss_metric<fc_no_bias<128, avg_pool_everything<
    alevel0<alevel1<alevel2<alevel3<alevel4<
    max_pool<3, 3, 2, 2, relu<affine<con<32, 7, 7, 2, 2, input_rgb_image_sized<150>>>>>>>>>>>>>;
}  // namespace facenet

namespace {
using facenet::anet_type;

bool file_exists(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

cv_box clip_box(double left, double top, double right, double bottom, int w, int h) {
    cv_box b;
    b.left = int32_t(std::max(0.0, std::floor(left)));
    b.top = int32_t(std::max(0.0, std::floor(top)));
    b.right = int32_t(std::min(double(w), std::ceil(right)));
    b.bottom = int32_t(std::min(double(h), std::ceil(bottom)));
    return b;
}

// ------------------------------------------------------------------ detectors

/// The detector interface: any detector that yields boxes and scores can sit here.
struct Detector {
    virtual ~Detector() = default;
    virtual std::vector<cv_detection> detect(const cv::Mat &bgr) = 0;
};

/// res10 SSD (Caffe) through OpenCV dnn, made safe for close-ups.
///
/// When a face fills much of the frame (an ID photo, a tight crop, a child close to the gate
/// camera), res10 decodes phantom boxes: high scores (0.93-1.0), raw coordinates shifted by a
/// third of the frame or lying wholly outside it (x up to 3.6 frame widths). Clipped to the frame
/// they become a "second face" touching the right and bottom edges, and on a tight crop the only
/// one. Measured on obama.jpg cropped to its face padded 0-50 %: a phantom at every padding up to
/// 30 %, none at 50 %, and none on any crop once the face takes up at most half of the network's
/// input. So:
///  1. a first pass on the frame as it is (small faces keep all the resolution the gate has);
///  2. boxes whose raw coordinates leave the frame are not trusted from that pass; when there is
///     one, or a large box (a close-up), the frame is padded by half its longer side on every
///     side (a uniform grey border, the network's mean) and run again, and the faces of that pass
///     that lie mostly inside the frame are kept;
///  3. a first-pass box inside the frame wins over an overlapping second-pass box (at full
///     resolution its box is the tighter one). On the 631 close-ups of faces-dev (250x250) this
///     took the boxes touching the bottom-right corner from 79 to 0.
/// A frame with only small faces well inside it costs one pass, as before.
struct Res10Detector final : Detector {
    cv::dnn::Net net;
    int input;
    float min_score;

    /// Raw coordinates may stray this far (a share of the frame) outside it and still count as inside.
    static constexpr double kEdgeTolerance = 0.02;
    /// A box wider or taller than this share of the frame's shorter side is a close-up.
    static constexpr double kCloseUpShare = 0.35;
    /// Padding of the second pass, a share of the frame's longer side on each side.
    static constexpr double kPadShare = 0.5;
    /// A second-pass box must have at least this share of its area inside the frame.
    static constexpr double kMinInside = 0.5;

    struct Raw { float score; double x1, y1, x2, y2; };  // pixels of the image the network saw

    Res10Detector(const char *prototxt, const char *weights, int input, float min_score)
        : net(cv::dnn::readNetFromCaffe(prototxt, weights)), input(input), min_score(min_score) {
        net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
        net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    }

    /// One forward pass: every box above min_score, unclipped, in `bgr`'s pixels.
    std::vector<Raw> pass(const cv::Mat &bgr) {
        cv::Mat small;
        cv::resize(bgr, small, cv::Size(input, input), 0, 0, cv::INTER_AREA);
        cv::Mat blob = cv::dnn::blobFromImage(small, 1.0, cv::Size(input, input), cv::Scalar(104.0, 177.0, 123.0), false, false);
        net.setInput(blob);
        cv::Mat out = net.forward();
        cv::Mat det(out.size[2], out.size[3], CV_32F, out.ptr<float>());
        std::vector<Raw> found;
        for (int i = 0; i < det.rows; i++) {
            float score = det.at<float>(i, 2);
            if (!(score >= min_score)) continue;
            found.push_back(Raw{score, det.at<float>(i, 3) * double(bgr.cols), det.at<float>(i, 4) * double(bgr.rows),
                                det.at<float>(i, 5) * double(bgr.cols), det.at<float>(i, 6) * double(bgr.rows)});
        }
        return found;
    }

    static double overlap(const cv_box &a, const cv_box &b) {
        double iw = std::max(0, std::min(a.right, b.right) - std::max(a.left, b.left));
        double ih = std::max(0, std::min(a.bottom, b.bottom) - std::max(a.top, b.top));
        double inter = iw * ih;
        double uni = double(a.right - a.left) * (a.bottom - a.top) + double(b.right - b.left) * (b.bottom - b.top) - inter;
        return uni > 0 ? inter / uni : 0;
    }

    std::vector<cv_detection> detect(const cv::Mat &bgr) override {
        const int w = bgr.cols, h = bgr.rows;
        const double tx = kEdgeTolerance * w, ty = kEdgeTolerance * h;
        const double closeUp = kCloseUpShare * std::min(w, h);
        std::vector<cv_detection> first, second;
        bool suspicious = false;
        for (const Raw &r : pass(bgr)) {
            if (r.x1 < -tx || r.y1 < -ty || r.x2 > w + tx || r.y2 > h + ty) { suspicious = true; continue; }
            if (std::min(r.x2 - r.x1, r.y2 - r.y1) > closeUp) suspicious = true;
            cv_box b = clip_box(r.x1, r.y1, r.x2, r.y2, w, h);
            if (b.right - b.left < 4 || b.bottom - b.top < 4) continue;
            first.push_back(cv_detection{b, r.score});
        }
        if (suspicious) {
            const int pad = int(std::lround(kPadShare * std::max(w, h)));
            cv::Mat canvas;
            cv::copyMakeBorder(bgr, canvas, pad, pad, pad, pad, cv::BORDER_CONSTANT, cv::Scalar(104, 117, 123));
            for (const Raw &r : pass(canvas)) {
                double x1 = r.x1 - pad, y1 = r.y1 - pad, x2 = r.x2 - pad, y2 = r.y2 - pad;
                double area = (x2 - x1) * (y2 - y1);
                cv_box b = clip_box(x1, y1, x2, y2, w, h);
                if (b.right - b.left < 4 || b.bottom - b.top < 4 || !(area > 0)) continue;
                if (double(b.right - b.left) * (b.bottom - b.top) < kMinInside * area) continue;
                second.push_back(cv_detection{b, r.score});
            }
        }
        // Merge: a box of the first pass that lies inside the frame keeps its place (at full
        // resolution its box is the tighter one); the padded pass adds the faces it alone found.
        auto by_score = [](const cv_detection &a, const cv_detection &b) { return a.score > b.score; };
        std::stable_sort(first.begin(), first.end(), by_score);
        std::stable_sort(second.begin(), second.end(), by_score);
        std::vector<cv_detection> kept;
        for (const auto *list : {&first, &second}) {
            for (const cv_detection &d : *list) {
                bool dup = false;
                for (const cv_detection &k : kept) if (overlap(d.box, k.box) >= 0.3) { dup = true; break; }
                if (!dup) kept.push_back(d);
            }
        }
        return kept;
    }
};

/// YuNet (2022mar, ONNX) through OpenCV's FaceDetectorYN: a small anchor-free network, about a tenth of res10's
/// cost on a gate frame (#16). The frame is shrunk so its longer side is at most `input` pixels (320 by default:
/// a 640x480 camera frame at half size, where the gate's smallest faces, 60 px, are still 30 px, above the
/// network's smallest anchors); a smaller image (a 250x250 close-up) is taken as it is. YuNet decodes no
/// phantom boxes on close-ups (ShiqiYu/libfacedetection.train; measured on 868 LFW close-ups, see
/// ../shared/models/detectors/README.md), so no second pass is needed.
struct YuNetDetector final : Detector {
    static constexpr int kMinSide = 64;
    cv::Ptr<cv::FaceDetectorYN> net;
    int input;
    cv::Size size{0, 0};

    YuNetDetector(const char *weights, int input, float min_score)
        : net(cv::FaceDetectorYN::create(weights, "", cv::Size(input, input), min_score, 0.3f, 5000)), input(input) {}

    std::vector<cv_detection> detect(const cv::Mat &bgr) override {
        const double scale = std::min(1.0, double(input) / double(std::max(bgr.cols, bgr.rows)));
        cv::Mat small = bgr;
        double sx = 1, sy = 1;  // the shrunk image's pixels -> bgr's
        if (scale < 1.0) {
            cv::resize(bgr, small, cv::Size(std::max(1, int(std::lround(bgr.cols * scale))), std::max(1, int(std::lround(bgr.rows * scale)))), 0, 0,
                       cv::INTER_AREA);
            sx = double(bgr.cols) / small.cols;
            sy = double(bgr.rows) / small.rows;
        }
        // The network's pooling needs at least 64 px each way (OpenCV pads to a multiple of 32 itself, and an image
        // under 64 px fails inside it): a smaller image gets a black border on its right and bottom, which moves no box.
        if (small.cols < kMinSide || small.rows < kMinSide) {
            cv::Mat padded;
            cv::copyMakeBorder(small, padded, 0, std::max(0, kMinSide - small.rows), 0, std::max(0, kMinSide - small.cols),
                               cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
            small = padded;
        }
        if (small.size() != size) {
            size = small.size();
            net->setInputSize(size);
        }
        cv::Mat faces;
        net->detect(small, faces);
        std::vector<cv_detection> found;
        for (int i = 0; i < faces.rows; i++) {
            const float *f = faces.ptr<float>(i);
            cv_box b = clip_box(f[0] * sx, f[1] * sy, (f[0] + f[2]) * sx, (f[1] + f[3]) * sy, bgr.cols, bgr.rows);
            if (b.right - b.left < 4 || b.bottom - b.top < 4) continue;
            found.push_back(cv_detection{b, std::min(1.0f, std::max(0.0f, f[14]))});
        }
        return found;
    }
};

/// Runs dlib's HOG detector on `bgr`, upsampling `upsample` times (face_recognition uses 1).
std::vector<std::pair<dlib::rectangle, double>> hog_detect(dlib::frontal_face_detector &hog, const cv::Mat &bgr, int upsample) {
    dlib::cv_image<dlib::bgr_pixel> view(bgr);
    dlib::array2d<unsigned char> gray;
    dlib::assign_image(gray, view);
    dlib::pyramid_down<2> pyr;
    for (int i = 0; i < upsample; i++) dlib::pyramid_up(gray, pyr);
    std::vector<dlib::rect_detection> dets;
    hog(gray, dets, 0.0);
    std::vector<std::pair<dlib::rectangle, double>> result;
    for (auto &d : dets) {
        dlib::rectangle r = d.rect;
        for (int i = 0; i < upsample; i++) r = pyr.rect_down(r);
        result.emplace_back(r, d.detection_confidence);
    }
    return result;
}

/// dlib's HOG frontal face detector: no model file; the box shape dlib's landmarks were trained on.
struct HogDetector final : Detector {
    dlib::frontal_face_detector hog = dlib::get_frontal_face_detector();
    std::vector<cv_detection> detect(const cv::Mat &bgr) override {
        std::vector<cv_detection> found;
        for (auto &[r, conf] : hog_detect(hog, bgr, 1)) {
            cv_box b = clip_box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, bgr.cols, bgr.rows);
            if (b.right - b.left < 4 || b.bottom - b.top < 4) continue;
            // Map the SVM margin (about -0.5..3) to 0..1 so scores read like the SSD's.
            float score = float(1.0 / (1.0 + std::exp(-2.0 * conf)));
            found.push_back(cv_detection{b, score});
        }
        return found;
    }
};

}  // namespace

struct cv_engine {
    std::unique_ptr<Detector> detector;
    /// How the detector's box relates to dlib's HOG box (the shape dlib's landmarks were trained on), for the
    /// refinement's fallback: HOG box width = box width * width, height = box height * height, its centre moved
    /// by (dx * width, dy * height) of the box. nullptr: the detector's box is already a HOG box.
    struct BoxToHog { double width, height, dx, dy; };
    std::unique_ptr<BoxToHog> to_hog;
    bool refine = true;
    /// Refine on the crop scaled to a face of kRefineFace pixels (refine_box 2), not upsampled (1).
    bool refine_scaled = true;
    dlib::frontal_face_detector hog;  // for box refinement
    dlib::shape_predictor landmarks;
    std::unique_ptr<anet_type> net;
};

namespace {

double iou(const dlib::rectangle &a, const dlib::rectangle &b) {
    double inter = double((a.intersect(b)).area());
    double uni = double(a.area() + b.area()) - inter;
    return uni > 0 ? inter / uni : 0;
}

/// Turns a detector box into the box shape dlib's shape predictor was trained on.
///
/// res10's (and YuNet's) box is taller and narrower than dlib's HOG box; feeding it straight to the
/// predictor moves the embedding 0.05-0.16 away from face_recognition's. So: run HOG inside
/// the region around the box and take its box; where HOG finds nothing (small, turned or
/// partial faces) use a calibrated transform of the detector's box (`cv_engine::BoxToHog`).
/// The scaled refinement starts HOG's pyramid where the face (the res10 box's longer side) is about this size:
/// a level or two above the 80 px window that finds it.
constexpr double kRefineFace = 120.0;

dlib::rectangle landmark_box(cv_engine *e, const cv::Mat &img, const cv_detection &d) {
    double w = d.box.right - d.box.left, h = d.box.bottom - d.box.top;
    if (!e->to_hog) return dlib::rectangle(d.box.left, d.box.top, d.box.right - 1, d.box.bottom - 1);
    const cv_engine::BoxToHog &t = *e->to_hog;
    double dw = w * t.width, dh = h * t.height;
    double dcx = (d.box.left + d.box.right) / 2.0 + t.dx * w, dcy = (d.box.top + d.box.bottom) / 2.0 + t.dy * h;
    dlib::rectangle fallback(long(std::lround(dcx - dw / 2)), long(std::lround(dcy - dh / 2)),
                             long(std::lround(dcx + dw / 2)) - 1, long(std::lround(dcy + dh / 2)) - 1);
    if (!e->refine) return fallback;
    double pad = 0.45 * std::max(w, h);
    cv::Rect region(int(std::floor(d.box.left - pad)), int(std::floor(d.box.top - pad)),
                    int(std::ceil(w + 2 * pad)), int(std::ceil(h + 2 * pad)));
    region &= cv::Rect(0, 0, img.cols, img.rows);
    if (region.width < 20 || region.height < 20) return fallback;
    cv::Mat crop = img(region);
    dlib::rectangle detector_rect(d.box.left - region.x, d.box.top - region.y, d.box.right - 1 - region.x, d.box.bottom - 1 - region.y);
    if (e->refine_scaled) {
        // face_recognition's way below (the crop upsampled, then every level of HOG's pyramid, each 5/6 of the
        // last) spends most of its time on the large levels, where only faces far smaller than this one could
        // match HOG's 80 px window. Here the crop is resized straight to the smallest of those same scales at
        // which the face is still at least kRefineFace px, and HOG scans from there down: the face is found at
        // the scale face_recognition would have found it at, for a fraction of the pixels.
        int upsample = std::max(region.width, region.height) <= 400 ? 1 : 0;
        if (std::max(w, h) < 40) upsample = 2;
        double scale = double(1 << upsample);
        while (std::max(w, h) * scale * 5.0 / 6.0 >= kRefineFace) scale *= 5.0 / 6.0;
        cv::Mat scaled;
        cv::resize(crop, scaled, cv::Size(), scale, scale, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
        dlib::rectangle target(long(std::lround(detector_rect.left() * scale)), long(std::lround(detector_rect.top() * scale)),
                               long(std::lround((detector_rect.right() + 1) * scale)) - 1,
                               long(std::lround((detector_rect.bottom() + 1) * scale)) - 1);
        double best = 0.25;
        dlib::drectangle chosen;
        bool found = false;
        for (auto &[r, conf] : hog_detect(e->hog, scaled, 0)) {
            double o = iou(r, target);
            if (o > best) { best = o; chosen = dlib::drectangle(r); found = true; }
        }
        if (!found) return fallback;
        // Back to the frame's pixels (right/bottom inclusive, like dlib's rectangles).
        return dlib::rectangle(long(std::lround(chosen.left() / scale)) + region.x, long(std::lround(chosen.top() / scale)) + region.y,
                               long(std::lround((chosen.right() + 1) / scale)) - 1 + region.x,
                               long(std::lround((chosen.bottom() + 1) / scale)) - 1 + region.y);
    }
    // Like face_recognition: one upsampling, unless the crop is already large.
    int upsample = std::max(region.width, region.height) <= 400 ? 1 : 0;
    if (std::max(w, h) < 40) upsample = 2;
    double best = 0.25;
    dlib::rectangle chosen;
    bool found = false;
    for (auto &[r, conf] : hog_detect(e->hog, crop, upsample)) {
        double o = iou(r, detector_rect);
        if (o > best) { best = o; chosen = r; found = true; }
    }
    if (!found) return fallback;
    return dlib::translate_rect(chosen, dlib::point(region.x, region.y));
}

dlib::full_object_detection shape_from(const cv_point pts[CV_LANDMARK_COUNT]) {
    std::vector<dlib::point> parts;
    long minx = LONG_MAX, miny = LONG_MAX, maxx = LONG_MIN, maxy = LONG_MIN;
    for (int i = 0; i < CV_LANDMARK_COUNT; i++) {
        dlib::point p(long(std::lround(pts[i].x)), long(std::lround(pts[i].y)));
        parts.push_back(p);
        minx = std::min(minx, p.x()); miny = std::min(miny, p.y());
        maxx = std::max(maxx, p.x()); maxy = std::max(maxy, p.y());
    }
    return dlib::full_object_detection(dlib::rectangle(minx, miny, maxx, maxy), parts);
}

}  // namespace

extern "C" cv_status cv_engine_create(const cv_engine_config *config, cv_engine **out) {
    return guarded("load face models", [&]() -> cv_status {
        if (!config || !out) return fail(CV_ERR_ARGUMENT, "null argument");
        *out = nullptr;
        auto e = std::make_unique<cv_engine>();
        float min_score = config->min_score > 0 ? config->min_score : 0.5f;
        int input = config->detector_input > 0 ? config->detector_input : 300;
        e->refine = config->refine_box != 0;
        e->refine_scaled = config->refine_box != 1;
        if (config->detector == CV_DETECTOR_RES10) {
            for (const char *p : {config->detector_prototxt, config->detector_weights})
                if (!file_exists(p)) return fail(CV_ERR_MODEL, std::string("missing model file ") + (p ? p : "(null)") + " (run `make models`)");
            e->detector = std::make_unique<Res10Detector>(config->detector_prototxt, config->detector_weights, input, min_score);
            // Calibrated on the face_recognition test images (HOG box relative to the res10 box).
            e->to_hog = std::make_unique<cv_engine::BoxToHog>(cv_engine::BoxToHog{1 / 0.93, 1 / 1.30, 0.0, 0.08});
        } else if (config->detector == CV_DETECTOR_YUNET) {
            if (!file_exists(config->detector_weights))
                return fail(CV_ERR_MODEL, std::string("missing model file ") + (config->detector_weights ? config->detector_weights : "(null)") +
                                              " (run `make models`)");
            e->detector = std::make_unique<YuNetDetector>(config->detector_weights, config->detector_input > 0 ? config->detector_input : 320,
                                                          min_score);
            // Calibrated on 208 photos of faces-dev (medians of the HOG box relative to YuNet's, where both found the face).
            e->to_hog = std::make_unique<cv_engine::BoxToHog>(cv_engine::BoxToHog{1.117, 0.806, -0.026, 0.046});
        } else if (config->detector == CV_DETECTOR_HOG) {
            e->detector = std::make_unique<HogDetector>();
        } else {
            return fail(CV_ERR_ARGUMENT, "unknown detector kind");
        }
        e->hog = dlib::get_frontal_face_detector();
        if (!file_exists(config->landmarks_model))
            return fail(CV_ERR_MODEL, std::string("missing model file ") + (config->landmarks_model ? config->landmarks_model : "(null)") + " (run `make models`)");
        dlib::deserialize(config->landmarks_model) >> e->landmarks;
        if (e->landmarks.num_parts() != CV_LANDMARK_COUNT) return fail(CV_ERR_MODEL, "the landmark model does not have 5 points");
        if (config->embedding_model) {
            if (!file_exists(config->embedding_model))
                return fail(CV_ERR_MODEL, std::string("missing model file ") + config->embedding_model + " (run `make models`)");
            e->net = std::make_unique<anet_type>();
            dlib::deserialize(config->embedding_model) >> *e->net;
        }
        *out = e.release();
        return CV_OK;
    });
}

extern "C" void cv_engine_free(cv_engine *engine) { delete engine; }

extern "C" cv_status cv_detect(cv_engine *engine, const cv_image *image, cv_detection *out, int32_t capacity, int32_t *count) {
    return guarded("detect faces", [&]() -> cv_status {
        if (!engine || !valid(image) || !count || (capacity > 0 && !out)) return fail(CV_ERR_ARGUMENT, "bad argument");
        auto found = engine->detector->detect(image->mat);
        std::stable_sort(found.begin(), found.end(), [](const cv_detection &a, const cv_detection &b) { return a.score > b.score; });
        *count = int32_t(found.size());
        for (int32_t i = 0; i < capacity && i < int32_t(found.size()); i++) out[i] = found[size_t(i)];
        return CV_OK;
    });
}

extern "C" cv_status cv_landmarks(cv_engine *engine, const cv_image *image, cv_detection detection, cv_point out[CV_LANDMARK_COUNT]) {
    return guarded("face landmarks", [&]() -> cv_status {
        if (!engine || !valid(image) || !out) return fail(CV_ERR_ARGUMENT, "bad argument");
        if (detection.box.right <= detection.box.left || detection.box.bottom <= detection.box.top) return fail(CV_ERR_ARGUMENT, "empty box");
        dlib::rectangle rect = landmark_box(engine, image->mat, detection);
        dlib::cv_image<dlib::bgr_pixel> view(image->mat);
        dlib::full_object_detection shape = engine->landmarks(view, rect);
        for (unsigned i = 0; i < CV_LANDMARK_COUNT; i++) out[i] = cv_point{float(shape.part(i).x()), float(shape.part(i).y())};
        return CV_OK;
    });
}

extern "C" cv_status cv_quality_of(const cv_image *image, cv_detection d, const cv_point lm[CV_LANDMARK_COUNT], cv_quality *out) {
    return guarded("face quality", [&]() -> cv_status {
        if (!valid(image) || !lm || !out) return fail(CV_ERR_ARGUMENT, "bad argument");
        cv_quality q{};
        int w = d.box.right - d.box.left, h = d.box.bottom - d.box.top;
        q.box_size = float(std::min(w, h));
        q.score = d.score;
        cv::Rect r = cv::Rect(d.box.left, d.box.top, w, h) & cv::Rect(0, 0, image->mat.cols, image->mat.rows);
        if (r.width >= 4 && r.height >= 4) {
            cv::Mat gray, small, lap;
            cv::cvtColor(image->mat(r), gray, cv::COLOR_BGR2GRAY);
            int sw = 100, sh = std::max(4, int(std::lround(100.0 * r.height / r.width)));
            cv::resize(gray, small, cv::Size(sw, sh), 0, 0, r.width > sw ? cv::INTER_AREA : cv::INTER_LINEAR);
            cv::Laplacian(small, lap, CV_64F);
            cv::Scalar mean, stddev;
            cv::meanStdDev(lap, mean, stddev);
            q.sharpness = float(stddev[0] * stddev[0]);
        }
        // Eye centres from the eye corners (points 0-1 and 2-3), the nose base is point 4.
        double e1x = (lm[0].x + lm[1].x) / 2, e1y = (lm[0].y + lm[1].y) / 2;
        double e2x = (lm[2].x + lm[3].x) / 2, e2y = (lm[2].y + lm[3].y) / 2;
        double ux = e2x - e1x, uy = e2y - e1y;
        double dist = std::hypot(ux, uy);
        if (dist > 1e-3) {
            ux /= dist; uy /= dist;
            if (ux < 0) { ux = -ux; uy = -uy; }
            double mx = (e1x + e2x) / 2, my = (e1y + e2y) / 2;
            double r = ((lm[4].x - mx) * ux + (lm[4].y - my) * uy) / dist;
            // The nose base stands out about half the eye distance: offset = 0.5 tan(yaw).
            q.yaw = float(std::atan(2.0 * r) * 180.0 / M_PI);
        }
        *out = q;
        return CV_OK;
    });
}

extern "C" cv_status cv_embed(cv_engine *engine, const cv_image *image, const cv_point lm[CV_LANDMARK_COUNT], float out[CV_EMBEDDING_DIM]) {
    return guarded("face descriptor", [&]() -> cv_status {
        if (!engine || !valid(image) || !lm || !out) return fail(CV_ERR_ARGUMENT, "bad argument");
        if (!engine->net) return fail(CV_ERR_MODEL, "the engine was created without the embedding model");
        dlib::cv_image<dlib::bgr_pixel> view(image->mat);
        dlib::matrix<dlib::rgb_pixel> chip;
        dlib::extract_image_chip(view, dlib::get_face_chip_details(shape_from(lm), 150, 0.25), chip);
        dlib::matrix<float, 0, 1> d = (*engine->net)(chip);
        if (d.size() != CV_EMBEDDING_DIM) return fail(CV_ERR_INTERNAL, "descriptor has the wrong size");
        for (long i = 0; i < d.size(); i++) out[i] = d(i);
        return CV_OK;
    });
}

extern "C" cv_status cv_embed_batch(cv_engine *engine, const cv_image *image, const cv_point *lm, int32_t count, float *out) {
    return guarded("face descriptors", [&]() -> cv_status {
        if (!engine || !valid(image) || count < 0 || (count > 0 && (!lm || !out))) return fail(CV_ERR_ARGUMENT, "bad argument");
        if (!engine->net) return fail(CV_ERR_MODEL, "the engine was created without the embedding model");
        if (count == 0) return CV_OK;
        dlib::cv_image<dlib::bgr_pixel> view(image->mat);
        std::vector<dlib::matrix<dlib::rgb_pixel>> chips(static_cast<size_t>(count));
        for (int32_t i = 0; i < count; i++)
            dlib::extract_image_chip(view, dlib::get_face_chip_details(shape_from(lm + size_t(i) * CV_LANDMARK_COUNT), 150, 0.25),
                                     chips[size_t(i)]);
        std::vector<dlib::matrix<float, 0, 1>> ds = (*engine->net)(chips, size_t(count));
        if (ds.size() != size_t(count)) return fail(CV_ERR_INTERNAL, "wrong number of descriptors");
        for (int32_t i = 0; i < count; i++) {
            const auto &d = ds[size_t(i)];
            if (d.size() != CV_EMBEDDING_DIM) return fail(CV_ERR_INTERNAL, "descriptor has the wrong size");
            for (long k = 0; k < d.size(); k++) out[size_t(i) * CV_EMBEDDING_DIM + size_t(k)] = d(k);
        }
        return CV_OK;
    });
}

extern "C" cv_status cv_face_chip(const cv_image *image, const cv_point lm[CV_LANDMARK_COUNT], cv_image **out) {
    return guarded("face chip", [&]() -> cv_status {
        if (!valid(image) || !lm || !out) return fail(CV_ERR_ARGUMENT, "bad argument");
        dlib::cv_image<dlib::bgr_pixel> view(image->mat);
        dlib::matrix<dlib::bgr_pixel> chip;
        dlib::extract_image_chip(view, dlib::get_face_chip_details(shape_from(lm), 150, 0.25), chip);
        cv::Mat m(int(chip.nr()), int(chip.nc()), CV_8UC3);
        for (long r = 0; r < chip.nr(); r++)
            for (long c = 0; c < chip.nc(); c++) {
                const auto &p = chip(r, c);
                m.at<cv::Vec3b>(int(r), int(c)) = cv::Vec3b(p.blue, p.green, p.red);
            }
        *out = new cv_image{m};
        return CV_OK;
    });
}

// ------------------------------------------------------------------ threads

// OpenBLAS's own setters (weak: another BLAS behind libblas.so.3 simply has none).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads(void) __attribute__((weak));
extern "C" char *openblas_get_corename(void) __attribute__((weak));

extern "C" const char *cv_blas_core(void) {
    return openblas_get_corename ? openblas_get_corename() : nullptr;
}

extern "C" const char *cv_blas_native_core(void) {
    const char *core = cv_blas_core();
    // OpenBLAS falls back to its generic Prescott (SSE3) kernels on a CPU it does not know.
    if (!core || std::strcmp(core, "Prescott") != 0) return nullptr;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return nullptr;
}

extern "C" cv_status cv_set_threads(int32_t opencv_threads, int32_t blas_threads, int32_t *opencv_now, int32_t *blas_now) {
    return guarded("set threads", [&]() -> cv_status {
        if (opencv_threads > 0) cv::setNumThreads(opencv_threads);
        if (blas_threads > 0 && openblas_set_num_threads) openblas_set_num_threads(blas_threads);
        if (opencv_now) *opencv_now = cv::getNumThreads();
        if (blas_now) *blas_now = openblas_get_num_threads ? openblas_get_num_threads() : -1;
        return CV_OK;
    });
}

// ------------------------------------------------------------------ liveness

struct cv_liveness {
    cv::dnn::Net nets[2];
    float scales[2];
};

namespace {

/// The crop of the reference implementation: the box widened by `scale` (reduced so it fits the frame),
/// centred on the box, shifted back inside the frame, corners truncated, inclusive.
cv::Rect liveness_crop(int W, int H, int x, int y, int bw, int bh, float &scale) {
    double s = std::min({double(H - 1) / bh, double(W - 1) / bw, double(scale)});
    scale = float(s);
    double nw = bw * s, nh = bh * s, cx = x + bw / 2.0, cy = y + bh / 2.0;
    double x1 = cx - nw / 2, y1 = cy - nh / 2, x2 = cx + nw / 2, y2 = cy + nh / 2;
    if (x1 < 0) { x2 -= x1; x1 = 0; }
    if (y1 < 0) { y2 -= y1; y1 = 0; }
    if (x2 > W - 1) { x1 -= x2 - (W - 1); x2 = W - 1; }
    if (y2 > H - 1) { y1 -= y2 - (H - 1); y2 = H - 1; }
    int ix1 = int(x1), iy1 = int(y1), ix2 = int(x2), iy2 = int(y2);
    return cv::Rect(ix1, iy1, ix2 - ix1 + 1, iy2 - iy1 + 1);
}

cv_status liveness_forward(cv::dnn::Net &net, const cv::Mat &crop, float out[3]) {
    cv::Mat input = crop;
    if (crop.cols != CV_LIVENESS_INPUT || crop.rows != CV_LIVENESS_INPUT) {
        cv::resize(crop, input, cv::Size(CV_LIVENESS_INPUT, CV_LIVENESS_INPUT), 0, 0, cv::INTER_LINEAR);
    }
    cv::Mat blob = cv::dnn::blobFromImage(input, 1.0, cv::Size(CV_LIVENESS_INPUT, CV_LIVENESS_INPUT), cv::Scalar(), false, false);
    net.setInput(blob);
    cv::Mat prob = net.forward();
    if (prob.total() != 3) return fail(CV_ERR_MODEL, "a liveness model gave " + std::to_string(prob.total()) + " outputs, not 3");
    const float *p = prob.ptr<float>();
    for (int i = 0; i < 3; i++) out[i] = p[i];
    return CV_OK;
}

}  // namespace

extern "C" cv_status cv_liveness_create(const char *model_a, float scale_a, const char *model_b, float scale_b, cv_liveness **out) {
    return guarded("load liveness models", [&]() -> cv_status {
        if (!model_a || !model_b || !out || !(scale_a >= 1) || !(scale_b >= 1)) return fail(CV_ERR_ARGUMENT, "bad liveness models");
        const char *paths[2] = {model_a, model_b};
        for (const char *p : paths) {
            struct stat st;
            if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
                return fail(CV_ERR_MODEL, std::string("liveness model missing: ") + p + " (run `make models`)");
            }
        }
        auto l = std::make_unique<cv_liveness>();
        for (int i = 0; i < 2; i++) {
            try {
                l->nets[i] = cv::dnn::readNetFromONNX(paths[i]);
            } catch (const cv::Exception &e) {
                return fail(CV_ERR_MODEL, std::string("cannot load ") + paths[i] + ": " + e.what());
            }
            if (l->nets[i].empty()) return fail(CV_ERR_MODEL, std::string("cannot load ") + paths[i]);
            l->nets[i].setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
            l->nets[i].setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
        }
        l->scales[0] = scale_a;
        l->scales[1] = scale_b;
        *out = l.release();
        return CV_OK;
    });
}

extern "C" void cv_liveness_free(cv_liveness *liveness) { delete liveness; }

extern "C" cv_status cv_liveness_check(cv_liveness *liveness, const cv_image *image, int32_t x, int32_t y, int32_t width,
                                       int32_t height, int32_t min_box, float min_scale, cv_liveness_result *out) {
    return guarded("liveness", [&]() -> cv_status {
        if (!liveness || !image || !out) return fail(CV_ERR_ARGUMENT, "null argument");
        const cv::Mat &frame = image->mat;
        const int W = frame.cols, H = frame.rows;
        if (width < std::max(1, min_box) || height < std::max(1, min_box)) {
            return fail(CV_ERR_UNCHECKABLE, "face too small for the liveness check (" + std::to_string(std::min(width, height)) +
                                                " px, at least " + std::to_string(min_box) + ")");
        }
        if (x < 0 || y < 0 || x + width > W || y + height > H) {
            return fail(CV_ERR_UNCHECKABLE, "the face box reaches outside the frame");
        }
        cv_liveness_result r{};
        float *probs[2] = {r.prob_a, r.prob_b};
        int32_t *crops[2] = {r.crop_a, r.crop_b};
        float *used[2] = {&r.scale_a, &r.scale_b};
        for (int i = 0; i < 2; i++) {
            float scale = liveness->scales[i];
            cv::Rect c = liveness_crop(W, H, x, y, width, height, scale);
            if (scale < min_scale) {
                return fail(CV_ERR_UNCHECKABLE, "the face fills the frame: no room for the liveness crop");
            }
            c &= cv::Rect(0, 0, W, H);
            if (c.width < 2 || c.height < 2) return fail(CV_ERR_UNCHECKABLE, "the liveness crop cannot be placed");
            cv_status st = liveness_forward(liveness->nets[i], frame(c), probs[i]);
            if (st != CV_OK) return st;
            crops[i][0] = c.x; crops[i][1] = c.y; crops[i][2] = c.x + c.width - 1; crops[i][3] = c.y + c.height - 1;
            *used[i] = scale;
        }
        float sum[3];
        for (int k = 0; k < 3; k++) sum[k] = r.prob_a[k] + r.prob_b[k];
        r.label = int32_t(std::max_element(sum, sum + 3) - sum);
        r.real = sum[1] / 2;
        *out = r;
        return CV_OK;
    });
}

extern "C" cv_status cv_liveness_probabilities(cv_liveness *liveness, int32_t model, const cv_image *crop, float out[3]) {
    return guarded("liveness model", [&]() -> cv_status {
        if (!liveness || !crop || !out || model < 0 || model > 1) return fail(CV_ERR_ARGUMENT, "bad argument");
        return liveness_forward(liveness->nets[model], crop->mat, out);
    });
}
