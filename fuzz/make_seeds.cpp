// Writes the image fuzzer's seed corpus: small JPEG/PNG/BMP files in the variants the loader
// accepts (baseline and progressive JPEG, EXIF-rotated JPEG, 8/16-bit, gray, RGBA PNG, 24-bit and
// gray BMP) plus a PNG whose header claims 30000x30000. Usage: make_seeds OUT_DIR [SOURCE_IMAGE]
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

static void save(const std::string &path, const std::vector<uint8_t> &bytes) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
}

static void encode(const std::string &dir, const std::string &name, const cv::Mat &m, const std::vector<int> &params = {}) {
    std::vector<uint8_t> buf;
    std::string ext = name.substr(name.find_last_of('.'));
    if (cv::imencode(ext, m, buf, params)) save(dir + "/" + name, buf);
    else std::fprintf(stderr, "make_seeds: cannot encode %s\n", name.c_str());
}

int main(int argc, char **argv) {
    if (argc < 2) { std::fprintf(stderr, "usage: make_seeds OUT_DIR [SOURCE_IMAGE]\n"); return 1; }
    std::string dir = argv[1];
    cv::Mat src;
    if (argc > 2) src = cv::imread(argv[2], cv::IMREAD_COLOR);
    if (src.empty()) {  // no test image: a synthetic gradient with a circle
        src = cv::Mat(64, 64, CV_8UC3);
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++) src.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x * 4), uchar(y * 4), uchar((x + y) * 2));
        cv::circle(src, {32, 32}, 16, {255, 255, 255}, 2);
    }
    cv::Mat small;
    cv::resize(src, small, {48, 40}, 0, 0, cv::INTER_AREA);
    cv::Mat gray, rgba, deep;
    cv::cvtColor(small, gray, cv::COLOR_BGR2GRAY);
    cv::cvtColor(small, rgba, cv::COLOR_BGR2BGRA);
    small.convertTo(deep, CV_16UC3, 257);

    encode(dir, "seed.jpg", small, {cv::IMWRITE_JPEG_QUALITY, 80});
    encode(dir, "seed_progressive.jpg", small, {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
    encode(dir, "seed_gray.jpg", gray);
    encode(dir, "seed.png", small);
    encode(dir, "seed_gray.png", gray);
    encode(dir, "seed_rgba.png", rgba);
    encode(dir, "seed_16bit.png", deep);
    encode(dir, "seed.bmp", small);
    encode(dir, "seed_gray.bmp", gray);

    // The baseline JPEG with an EXIF APP1 segment saying "rotate 90" (orientation 6) after SOI.
    std::vector<uint8_t> jpg;
    cv::imencode(".jpg", small, jpg);
    const uint8_t exif[] = {0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,
                            'M', 'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08,
                            0x00, 0x01, 0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00,
                            0x00, 0x00, 0x00, 0x00};
    jpg.insert(jpg.begin() + 2, exif, exif + sizeof exif);
    save(dir + "/seed_exif_rotated.jpg", jpg);

    // A PNG whose IHDR claims 30000x30000: the loader must refuse it before decoding.
    std::vector<uint8_t> png;
    cv::imencode(".png", small, png);
    auto put32 = [&](size_t at, uint32_t v) { for (int k = 0; k < 4; k++) png[at + k] = uint8_t(v >> (24 - 8 * k)); };
    put32(16, 30000);
    put32(20, 30000);
    save(dir + "/huge_header.png", png);
    std::printf("make_seeds: wrote 11 seeds to %s\n", dir.c_str());
    return 0;
}
