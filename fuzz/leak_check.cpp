// Memory check for issue 2 item 6: N detect -> landmarks -> quality -> embed rounds in one process,
// through the shim's plain C API only. Prints the resident set size (from /proc/self/statm) along
// the way; built with -fsanitize=address, LeakSanitizer reports anything not freed at exit.
// Usage: leak_check [ITERATIONS=1000] [IMAGE=.testdata/obama.jpg] [MODELS_DIR=Models]
// Run through scripts/fuzz.sh leak.
#include "cvshim.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

static double rss_mb() {
    long pages_total = 0, pages_resident = 0;
    std::FILE *f = std::fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = -1;
    std::fclose(f);
    return double(pages_resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

static int die(const char *what, cv_status s) {
    std::fprintf(stderr, "leak_check: %s failed (%d): %s\n", what, int(s), cv_last_error());
    return 1;
}

int main(int argc, char **argv) {
    int iterations = argc > 1 ? std::atoi(argv[1]) : 1000;
    std::string image_path = argc > 2 ? argv[2] : ".testdata/obama.jpg";
    std::string models = argc > 3 ? argv[3] : "Models";
    std::string prototxt = models + "/deploy.prototxt.txt";
    std::string weights = models + "/res10_300x300_ssd_iter_140000.caffemodel";
    std::string landmarks = models + "/shape_predictor_5_face_landmarks.dat";
    std::string resnet = models + "/dlib_face_recognition_resnet_model_v1.dat";

    cv_engine_config config{};
    config.detector = CV_DETECTOR_RES10;
    config.detector_prototxt = prototxt.c_str();
    config.detector_weights = weights.c_str();
    config.landmarks_model = landmarks.c_str();
    config.embedding_model = resnet.c_str();
    config.min_score = 0.5f;
    config.detector_input = 300;
    config.refine_box = 1;

    std::printf("rss after start-up: %.1f MB\n", rss_mb());
    cv_engine *engine = nullptr;
    cv_status s = cv_engine_create(&config, &engine);
    if (s != CV_OK) return die("cv_engine_create", s);
    cv_image *image = nullptr;
    s = cv_image_read(image_path.c_str(), 0, &image);
    if (s != CV_OK) { cv_engine_free(engine); return die("cv_image_read", s); }
    std::printf("rss after loading models and %s (%dx%d): %.1f MB\n", image_path.c_str(),
                cv_image_width(image), cv_image_height(image), rss_mb());
    std::fflush(stdout);

    auto t0 = std::chrono::steady_clock::now();
    double rss10 = 0, first_checksum = 0;
    int failures = 0;
    for (int i = 1; i <= iterations; i++) {
        cv_detection dets[16];
        int32_t count = 0;
        s = cv_detect(engine, image, dets, 16, &count);
        if (s != CV_OK || count < 1) { failures++; if (s != CV_OK) die("cv_detect", s); continue; }
        cv_point pts[CV_LANDMARK_COUNT];
        s = cv_landmarks(engine, image, dets[0], pts);
        if (s != CV_OK) { failures++; die("cv_landmarks", s); continue; }
        cv_quality q;
        s = cv_quality_of(image, dets[0], pts, &q);
        if (s != CV_OK) { failures++; die("cv_quality_of", s); continue; }
        float emb[CV_EMBEDDING_DIM];
        s = cv_embed(engine, image, pts, emb);
        if (s != CV_OK) { failures++; die("cv_embed", s); continue; }
        double checksum = 0;
        for (float v : emb) checksum += v;
        if (i == 1) first_checksum = checksum;
        else if (checksum != first_checksum) failures++;  // the same image must give the same embedding
        if (i == 10 || i == 100 || i == 500 || i == 1000 || i == iterations) {
            double now = rss_mb();
            if (i == 10) rss10 = now;
            double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::printf("iteration %5d: rss %.1f MB (%+.1f MB since iteration 10), %d faces, %.0f ms/iteration\n",
                        i, now, now - rss10, count, 1000.0 * secs / i);
            std::fflush(stdout);
        }
    }
    cv_image_free(image);
    cv_engine_free(engine);
    std::printf("done: %d iterations, %d failures; rss after freeing: %.1f MB\n", iterations, failures, rss_mb());
    return failures == 0 ? 0 : 2;
}
