#!/usr/bin/env bash
# Fuzzing (issue 8 item 7) and the memory check (issue 2 item 6).
#
#   scripts/fuzz.sh [SECONDS]        build the three libFuzzer harnesses and run each for SECONDS
#                                    (default 60): image (shim C API, cv_image_decode), roster
#                                    (RosterParser.parse(_ data:)), config (AttendanceConfig.parse)
#   scripts/fuzz.sh leak [N]         N (default 1000) detect+landmarks+quality+embed rounds in one
#                                    process: RSS curve (plain -O2 build), then the same under
#                                    ASan + LeakSanitizer (LEAK_ASAN_ITERATIONS, default N)
#   scripts/fuzz.sh build            build only
#
# Prints executed inputs (libFuzzer's stat::number_of_executed_units) and crashes per harness and
# exits non-zero when a harness crashed; the input is kept in fuzz/bin/artifacts/. Reproduce one with
#   fuzz/bin/image_fuzzer fuzz/bin/artifacts/image-crash-...      (or .build-fuzz/release/RosterFuzzer ...)
# Corpora grow in fuzz/corpus-{image,roster,config}/ (git-ignored), binaries in fuzz/bin/ and .build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Debian packages that give a clang with libFuzzer when the Swift toolchain's clang is absent.
FUZZ_APT_PACKAGES=(clang-14 libclang-rt-14-dev)

BIN=fuzz/bin
ART=$BIN/artifacts
SWIFT_SCRATCH=.build-fuzz
mkdir -p "$BIN" "$ART"

OPENCV_LIBS=(-lopencv_core -lopencv_imgproc -lopencv_imgcodecs -lopencv_dnn -lopencv_videoio -ldlib -llapack -lblas)
SHIM_INC=(-I Sources/COpenCV/include -I/usr/include/opencv4 -Wno-deprecated-declarations)

# ------------------------------------------------------------------ tools

supports_libfuzzer() {  # $1: a clang++; true if it links a -fsanitize=fuzzer,address program
    local dir; dir=$(mktemp -d)
    printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t){return 0;}\n' > "$dir/t.cpp"
    "$1" -fsanitize=fuzzer,address "$dir/t.cpp" -o "$dir/t" >/dev/null 2>&1
    local rc=$?; rm -rf "$dir"; return $rc
}

find_clang() {
    local c
    for c in "${CLANGXX:-}" /opt/swift/usr/bin/clang++ clang++-14 clang++; do
        [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && supports_libfuzzer "$c" && { echo "$c"; return 0; }
    done
    return 1
}

CXX=$(find_clang || true)
if [ -z "$CXX" ]; then
    echo "fuzz: no clang++ with libFuzzer; installing ${FUZZ_APT_PACKAGES[*]}" >&2
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get install -y --no-install-recommends "${FUZZ_APT_PACKAGES[@]}" >&2
    CXX=$(find_clang) || { echo "fuzz: still no clang++ with libFuzzer" >&2; exit 1; }
fi
LLD=(); "$CXX" -fuse-ld=lld -x c++ /dev/null -shared -o /dev/null >/dev/null 2>&1 && LLD=(-fuse-ld=lld)

newer() {  # true if $1 is missing or older than any of the rest
    local out=$1; shift
    [ -e "$out" ] || return 0
    local f; for f in "$@"; do [ "$f" -nt "$out" ] && return 0; done
    return 1
}

# ------------------------------------------------------------------ builds

build_image() {
    if newer $BIN/image_fuzzer Sources/COpenCV/shim.cpp Sources/COpenCV/include/cvshim.h fuzz/image_fuzzer.cpp; then
        echo "fuzz: building $BIN/image_fuzzer with $CXX (shim.cpp takes a few minutes)"
        "$CXX" -fsanitize=fuzzer,address -O1 -g -std=c++17 "${LLD[@]}" "${SHIM_INC[@]}" \
            Sources/COpenCV/shim.cpp fuzz/image_fuzzer.cpp "${OPENCV_LIBS[@]}" -o $BIN/image_fuzzer
    fi
    if newer $BIN/make_seeds fuzz/make_seeds.cpp; then
        "$CXX" -O1 -std=c++17 "${LLD[@]}" -I/usr/include/opencv4 fuzz/make_seeds.cpp \
            -lopencv_core -lopencv_imgproc -lopencv_imgcodecs -o $BIN/make_seeds
    fi
}

build_swift() {
    echo "fuzz: building the Swift parser harnesses (fuzz/swift, scratch $SWIFT_SCRATCH)"
    swift build -c release --package-path fuzz/swift --scratch-path "$ROOT/$SWIFT_SCRATCH" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 \
        | grep -v "Cannot export local symbol" || true
    [ -x $SWIFT_SCRATCH/release/RosterFuzzer ] && [ -x $SWIFT_SCRATCH/release/ConfigFuzzer ] \
        || { echo "fuzz: the Swift harnesses did not build" >&2; exit 1; }
}

build_leak() {
    local src=(Sources/COpenCV/shim.cpp Sources/COpenCV/include/cvshim.h fuzz/leak_check.cpp)
    if newer $BIN/leak_check "${src[@]}"; then
        echo "fuzz: building $BIN/leak_check (-O2)"
        "$CXX" -O2 -g -std=c++17 "${LLD[@]}" "${SHIM_INC[@]}" Sources/COpenCV/shim.cpp fuzz/leak_check.cpp \
            "${OPENCV_LIBS[@]}" -o $BIN/leak_check
    fi
    if newer $BIN/leak_check_asan "${src[@]}"; then
        echo "fuzz: building $BIN/leak_check_asan (-O2 -fsanitize=address: ASan + LeakSanitizer)"
        "$CXX" -O2 -g -fsanitize=address -fno-omit-frame-pointer -std=c++17 "${LLD[@]}" "${SHIM_INC[@]}" \
            Sources/COpenCV/shim.cpp fuzz/leak_check.cpp "${OPENCV_LIBS[@]}" -o $BIN/leak_check_asan
    fi
}

# ------------------------------------------------------------------ seeds

seed_image() {
    local dir=fuzz/corpus-image; mkdir -p $dir
    local src=.testdata/obama.jpg; [ -f $src ] || src=
    $BIN/make_seeds $dir $src >/dev/null
}

seed_roster() {
    local dir=fuzz/corpus-roster; mkdir -p $dir
    printf '\xef\xbb\xbfSTT,Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính\r\n1,0790120001,Nguyễn Văn An,6A1,05/09/2013,Nam\r\n2,0790120002,"Trần Thị, Bình",Lớp 6A2,2013-01-31,Nữ\r\n' > $dir/seed_vi.csv
    printf 'DANH SÁCH HỌC SINH;;;\nTrường THCS Nguyễn Du;;;\nMã HS;Họ tên;Lớp;Khối\nHS-01;Lê  Minh   Châu;10C2;Khối 10\nHS-02;"Phạm ""Bé"" Dung";10C2;10\n' > $dir/seed_semicolon.csv
    printf 'student_code\tfull_name\tclass\tdate_of_birth\tguardian\trelation\tconsent_date\tchild_agrees\tscope\nS1\tAnna Bell\t6A\t2012-09-05\tMary Bell\tmother\t2024-09-05\tyes\tattendance\nS2\t"Multi\nline"\t7B\t41000\tJo\tfather\t05/09/2024\tno\t\n' > $dir/seed_consent.tsv
    printf 'code,name,class\n1.2E+11,X,6A\n,Empty,6A\nS1,,6A\nS1,Dup,6A\nS3,No grade,ABC\nS4,Too,many,fields\n' > $dir/seed_errors.csv
    printf '\xff\xfeM\x00a\x00,\x00H\x00\n\x00' > $dir/seed_utf16.csv
}

seed_config() {
    local dir=fuzz/corpus-config; mkdir -p $dir
    cp deploy/attendance.toml $dir/seed_deploy.toml
    : > $dir/seed_empty.toml
    printf '[school]\ntimezone = "Mars/Olympus"\n[recognition]\nvotes = 0\nthreshold = -1.5\n[schedule]\nschool_days = [0, 8]\nholidays = ["2026-02-30"]\n[[schedule.session]]\nname = "x"\nstart = "25:00"\nend = "07:00"\n' > $dir/seed_bad.toml
    printf '[[camera]]\nid = "a"\nsource = "rtsp://u:p@h/s"\n[[camera]]\nid = "a"\nsource = "file:x.avi"\ndirection = "sideways"\n[connector]\nendpoint = "http://example.com"\nbatch_size = 9223372036854775807\n[unknown]\nx = 1\n' > $dir/seed_cameras.toml
}

# ------------------------------------------------------------------ runs

STATUS=0
SUMMARY=()

run_one() {  # name binary seconds dict
    local name=$1 bin=$2 secs=$3 dict=$4
    local corpus=fuzz/corpus-$name log=$BIN/$name.log
    echo "fuzz: $name for ${secs}s (corpus $corpus, log $log)"
    local rc=0
    LSAN_OPTIONS="suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=1:allocator_may_return_null=0" \
        "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=30 -rss_limit_mb=4096 \
        -dict="$dict" -artifact_prefix="$ART/$name-" "$corpus" > "$log" 2>&1 || rc=$?
    local units execs crashes
    units=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    execs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    local cov; cov=$(grep -oE '^#[0-9]+.*cov: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' || true)
    if [ $rc -ne 0 ]; then
        crashes=1
        STATUS=1
        echo "fuzz: $name CRASHED (exit $rc):"
        grep -E 'ERROR:|SUMMARY:|Test unit written|^    #[0-9] ' "$log" | head -20 | sed 's/^/    /'
    else
        crashes=0
    fi
    SUMMARY+=("$(printf '%-7s %6ss  %10s inputs  %6s/s  %-9s corpus %5s files  crashes %s' \
        "$name" "$secs" "${units:-?}" "${execs:-?}" "${cov:-cov: ?}" "$(ls "$corpus" | wc -l)" "$crashes")")
}

leak_check() {
    local n=${1:-1000} n_asan=${LEAK_ASAN_ITERATIONS:-${1:-1000}}
    [ -f .testdata/obama.jpg ] || { echo "fuzz: .testdata/obama.jpg missing: run make testdata" >&2; exit 1; }
    [ -f Models/dlib_face_recognition_resnet_model_v1.dat ] || { echo "fuzz: models missing: run make models" >&2; exit 1; }
    build_leak
    echo "== leak check, plain -O2 build, $n iterations (RSS from /proc/self/statm)"
    $BIN/leak_check "$n" .testdata/obama.jpg Models
    echo "== leak check under ASan + LeakSanitizer, $n_asan iterations"
    local rc=0
    ASAN_OPTIONS="detect_leaks=1" $BIN/leak_check_asan "$n_asan" .testdata/obama.jpg Models > $BIN/leak_asan.log 2>&1 || rc=$?
    cat $BIN/leak_asan.log
    if grep -q "ERROR: LeakSanitizer" $BIN/leak_asan.log; then
        echo "fuzz: LeakSanitizer found leaks (see $BIN/leak_asan.log)"; exit 1
    fi
    [ "$rc" -eq 0 ] || { echo "fuzz: leak_check_asan exited $rc"; exit 1; }
    echo "fuzz: LeakSanitizer: no leaks"
}

case "${1:-}" in
    leak) shift; leak_check "${1:-1000}"; exit 0 ;;
    build) build_image; build_swift; exit 0 ;;
esac

SECS=${1:-60}
build_image
build_swift
seed_image; seed_roster; seed_config
run_one image $BIN/image_fuzzer "$SECS" fuzz/image.dict
run_one roster $SWIFT_SCRATCH/release/RosterFuzzer "$SECS" fuzz/roster.dict
# Known, reported toml++ abort (see fuzz/swift/Sources/ConfigFuzzer): skipped while fuzzing unless
# FUZZ_CONFIG_KNOWN_BUGS=0, and checked here on its two-byte reproducer so a fix shows up.
export FUZZ_CONFIG_KNOWN_BUGS=${FUZZ_CONFIG_KNOWN_BUGS:-0}
run_one config $SWIFT_SCRATCH/release/ConfigFuzzer "$SECS" fuzz/config.dict
printf '[.' > $BIN/known-toml-header.toml
if FUZZ_CONFIG_KNOWN_BUGS=0 $SWIFT_SCRATCH/release/ConfigFuzzer $BIN/known-toml-header.toml > $BIN/known-toml-header.log 2>&1; then
    SUMMARY+=("known   toml++ abort on '[.' (TOMLKit 0.6.0, toml.hpp:15481): no longer reproduces")
else
    SUMMARY+=("known   toml++ abort on '[.' (TOMLKit 0.6.0, toml.hpp:15481): still reproduces (not counted above)")
fi
echo "== fuzz summary (budget ${SECS}s per harness)"
printf '%s\n' "${SUMMARY[@]}"
exit $STATUS
