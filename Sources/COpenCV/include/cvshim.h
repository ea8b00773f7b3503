/*
 * cvshim.h: the plain C face of the OpenCV + dlib face engine.
 *
 * Rules (DESIGN.md): opaque handles that own their memory, POD structs, a status
 * code per call plus a thread-local message (cv_last_error), no C++ exception ever
 * crosses this header. Handles are not thread-safe: own each from one thread/actor.
 * Images are always 8-bit BGR, rows contiguous (stride = width * 3).
 */
#ifndef CVSHIM_H
#define CVSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cv_status {
    CV_OK = 0,
    CV_ERR_ARGUMENT = 1,   /* a null pointer, a bad size, a bad option */
    CV_ERR_IO = 2,         /* file missing, unreadable, a directory, empty */
    CV_ERR_DECODE = 3,     /* not an image, corrupt or truncated, unsupported format */
    CV_ERR_TOO_LARGE = 4,  /* the header claims more pixels than the limit allows */
    CV_ERR_MODEL = 5,      /* a model file is missing or cannot be loaded */
    CV_ERR_VIDEO = 6,      /* a video source cannot be opened or read */
    CV_ERR_END = 7,        /* end of a finite video stream */
    CV_ERR_INTERNAL = 8,   /* an unexpected C++ exception, caught in the shim */
    CV_ERR_UNCHECKABLE = 9, /* liveness: the face box is too small or its widened crop cannot be placed */
} cv_status;

/* The message of the last failed call on this thread ("" if none). Valid until the next call. */
const char *cv_last_error(void);

/* ---------------------------------------------------------------- images */

typedef struct cv_image cv_image;

/* Default pixel limit used when max_pixels <= 0: 50 megapixels. */
#define CV_DEFAULT_MAX_PIXELS ((int64_t)50 * 1000 * 1000)

/* Reads a JPEG, PNG or BMP file (8/16-bit, gray, RGB, RGBA; EXIF orientation honoured)
 * into 8-bit BGR. The header's size is checked against max_pixels before decoding. */
cv_status cv_image_read(const char *path, int64_t max_pixels, cv_image **out);
/* Same, from encoded bytes in memory. */
cv_status cv_image_decode(const uint8_t *bytes, size_t length, int64_t max_pixels, cv_image **out);
/* Copies a raw BGR buffer (row_stride >= width * 3). */
cv_status cv_image_from_bgr(const uint8_t *bgr, int32_t width, int32_t height, size_t row_stride, cv_image **out);
/* Writes an image; the format follows the extension (.jpg, .png, .bmp). */
cv_status cv_image_write(const cv_image *image, const char *path);
/* Resized copy (area interpolation when shrinking, linear when enlarging). */
cv_status cv_image_resize(const cv_image *image, int32_t width, int32_t height, cv_image **out);
/* Blank (uniform colour) image. */
cv_status cv_image_create(int32_t width, int32_t height, uint8_t b, uint8_t g, uint8_t r, cv_image **out);
/* Copies src onto dst with its top-left corner at (x, y); parts outside dst are cut off. */
cv_status cv_image_paste(cv_image *dst, const cv_image *src, int32_t x, int32_t y);
void cv_image_free(cv_image *image);
int32_t cv_image_width(const cv_image *image);
int32_t cv_image_height(const cv_image *image);
/* BGR pixels, height rows of width * 3 bytes. Owned by the image. */
const uint8_t *cv_image_data(const cv_image *image);

/* Replay composition (the gate videos of the benchmarks): */
/* adds Gaussian noise of standard deviation sigma (grey levels) to every channel, from a seeded generator; */
cv_status cv_image_add_noise(cv_image *image, float sigma, uint64_t seed);
/* pixel = pixel * gain + offset, saturated (a lighting change); */
cv_status cv_image_adjust(cv_image *image, float gain, float offset);
/* a horizontal motion blur over length pixels (a line kernel; length <= 1 leaves the image as it is). */
cv_status cv_image_motion_blur(cv_image *image, int32_t length);

/* ---------------------------------------------------------------- faces */

typedef struct cv_point { float x, y; } cv_point;
/* A box in the original image's pixels, face_recognition's order; right/bottom exclusive. */
typedef struct cv_box { int32_t top, right, bottom, left; } cv_box;

typedef struct cv_detection {
    cv_box box;     /* the detector's box, clipped to the image */
    float score;    /* detector confidence, 0..1 */
} cv_detection;

typedef struct cv_quality {
    float box_size;   /* min(width, height) of the box, pixels */
    float sharpness;  /* variance of the Laplacian of the face, normalised to 100 px width */
    float yaw;        /* rough yaw estimate from the landmarks, degrees, + = turned to image right */
    float score;      /* detector score */
} cv_quality;

typedef enum cv_detector_kind {
    CV_DETECTOR_RES10 = 0,  /* OpenCV dnn res10 SSD (Caffe): the default */
    CV_DETECTOR_HOG = 1,    /* dlib's HOG frontal face detector: no model file needed */
    CV_DETECTOR_YUNET = 2,  /* YuNet 2022mar (ONNX) through OpenCV's FaceDetectorYN: detector_weights is the .onnx */
} cv_detector_kind;

#define CV_EMBEDDING_DIM 128
#define CV_LANDMARK_COUNT 5

typedef struct cv_engine_config {
    cv_detector_kind detector;
    const char *detector_prototxt;   /* res10 deploy.prototxt.txt */
    const char *detector_weights;    /* res10 .caffemodel, or YuNet's .onnx */
    const char *landmarks_model;     /* shape_predictor_5_face_landmarks.dat */
    const char *embedding_model;     /* dlib_face_recognition_resnet_model_v1.dat (NULL: no embeddings) */
    float min_score;                 /* detections below are dropped; <= 0 means 0.5 */
    int32_t detector_input;          /* res10: the network's square input, <= 0 means 300; YuNet: a larger image is
                                        shrunk so its longer side is this, <= 0 means 320 */
    int32_t refine_box;              /* refine res10 and YuNet boxes with dlib HOG before landmarks: 0 no; 1 face_recognition's
                                        way (the crop around the box upsampled, every pyramid level); 2 (and any
                                        other value) the same scales, but HOG's pyramid started at the level where
                                        the face is still >= 120 px (a fraction of the cost; FaceEngine asks for 1) */
} cv_engine_config;

typedef struct cv_engine cv_engine;

cv_status cv_engine_create(const cv_engine_config *config, cv_engine **out);
void cv_engine_free(cv_engine *engine);

/* Detects faces, best score first; *count is the number found (may exceed capacity:
 * only capacity are written). */
cv_status cv_detect(cv_engine *engine, const cv_image *image, cv_detection *out, int32_t capacity, int32_t *count);
/* The 5 dlib landmarks for a detected box (refined first when the engine says so). */
cv_status cv_landmarks(cv_engine *engine, const cv_image *image, cv_detection detection, cv_point out[CV_LANDMARK_COUNT]);
/* Quality record for a face. Cheap. */
cv_status cv_quality_of(const cv_image *image, cv_detection detection, const cv_point landmarks[CV_LANDMARK_COUNT], cv_quality *out);
/* The 128-D dlib ResNet descriptor of the 150x150 chip aligned on the landmarks
 * (get_face_chip_details(shape, 150, 0.25)). */
cv_status cv_embed(cv_engine *engine, const cv_image *image, const cv_point landmarks[CV_LANDMARK_COUNT], float out[CV_EMBEDDING_DIM]);
/* The descriptors of several faces of one image in one pass of the network (dlib batches them):
 * landmarks holds count * CV_LANDMARK_COUNT points, out count * CV_EMBEDDING_DIM floats, face i's at
 * out + i * CV_EMBEDDING_DIM. The same values as cv_embed on each face. */
cv_status cv_embed_batch(cv_engine *engine, const cv_image *image, const cv_point *landmarks, int32_t count, float *out);
/* The aligned 150x150 chip itself (for inspection). */
cv_status cv_face_chip(const cv_image *image, const cv_point landmarks[CV_LANDMARK_COUNT], cv_image **out);

/* ---------------------------------------------------------------- threads */

/* The worker threads of the libraries under the engine, process-wide: OpenCV's parallel loops (the res10
 * and liveness networks, resizes; its TBB pool) and OpenBLAS (dlib's ResNet convolutions). A count <= 0
 * leaves that library as it is. Call before the cameras start; the current counts are returned through
 * the pointers that are not NULL (blas -1: the BLAS in use is not OpenBLAS, its threads cannot be set). */
cv_status cv_set_threads(int32_t opencv_threads, int32_t blas_threads, int32_t *opencv_now, int32_t *blas_now);

/* The CPU kernels OpenBLAS chose when it loaded ("SkylakeX", "Haswell", "Zen", ...; NULL when the BLAS is not
 * OpenBLAS). */
const char *cv_blas_core(void);
/* The OPENBLAS_CORETYPE that gives this CPU native kernels when OpenBLAS did not recognise it and fell back to its
 * generic Prescott (SSE3) ones, as Debian 12's 0.3.21 does on Intel Xeon model 207 (Emerald Rapids): "SkylakeX"
 * with AVX-512 F, CD, BW, DQ and VL, "Haswell" with AVX2 and FMA. NULL when OpenBLAS chose otherwise. The variable
 * is read only when the library loads: the program must start again with it set. */
const char *cv_blas_native_core(void);

/* ---------------------------------------------------------------- liveness */

/* Passive liveness: two MiniFASNet networks (ONNX, run by OpenCV dnn), each on its own crop around the
 * face box widened by its scale (2.7 and 4.0), resized to 80x80, BGR, raw 0..255, no mean. Their softmax
 * outputs are summed: label = argmax (1 = real; 0 and 2 are spoofs), real = P[1] / 2. */
typedef struct cv_liveness cv_liveness;

#define CV_LIVENESS_INPUT 80

typedef struct cv_liveness_result {
    float real;         /* (prob_a[1] + prob_b[1]) / 2 */
    int32_t label;      /* argmax(prob_a + prob_b) */
    float prob_a[3];
    float prob_b[3];
    int32_t crop_a[4];  /* x1, y1, x2, y2 of model A's crop, inclusive */
    int32_t crop_b[4];
    float scale_a;      /* the scales used after fitting the crop in the frame */
    float scale_b;
} cv_liveness_result;

cv_status cv_liveness_create(const char *model_a, float scale_a, const char *model_b, float scale_b, cv_liveness **out);
void cv_liveness_free(cv_liveness *liveness);
/* Checks the face in box (x, y, width, height; pixels). CV_ERR_UNCHECKABLE when the box is smaller than
 * min_box pixels on a side, reaches outside the frame, or the frame cannot hold even the box itself
 * widened by min_scale (the network would see no context around the face). */
cv_status cv_liveness_check(cv_liveness *liveness, const cv_image *image, int32_t x, int32_t y, int32_t width, int32_t height,
                            int32_t min_box, float min_scale, cv_liveness_result *out);
/* One model (0 = A, 1 = B) on a crop already made (resized to 80x80 if it is not): its 3 probabilities. */
cv_status cv_liveness_probabilities(cv_liveness *liveness, int32_t model, const cv_image *crop, float out[3]);

#ifdef __cplusplus
}
#endif
#endif /* CVSHIM_H */
