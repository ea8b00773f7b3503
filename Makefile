# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
SWIFT ?= swift
SHELL := /bin/bash

.PHONY: run test test-unit format lint deps models testdata build release bench-face bench-match bench-capture bench-pipeline bench-accuracy bench-liveness fuzz clean

## run: install what is missing, fetch + verify the models, build in release, run the gate demo, then serve
## the web console on http://127.0.0.1:8080/ (the demo prints a one-time admin password; Ctrl-C stops)
run: deps models testdata release
	.build/release/attendance demo --console

## test: the same installs, the style check, then the whole test suite
test: deps models testdata lint
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

## test-unit: the fast tests only, for work in progress (no models, built binaries or child processes:
## the classes named ...EndToEndTests and the face engine's are skipped); `make test` runs everything
test-unit:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip EndToEndTests --skip FaceEngineTests

# The Swift sources the style applies to (the fuzzers' AttendanceCore is a link to Sources/AttendanceCore).
SWIFT_SOURCES = Package.swift Sources Tests fuzz/swift/Package.swift fuzz/swift/Sources/ConfigFuzzer fuzz/swift/Sources/RosterFuzzer

## format: rewrite the Swift sources in the house style (.swift-format: 4 spaces, 130 columns)
format:
	$(SWIFT) format --in-place --recursive --parallel $(SWIFT_SOURCES)

## lint: check the house style and change nothing; any finding fails (`make format` fixes most)
lint:
	$(SWIFT) format lint --strict --recursive --parallel $(SWIFT_SOURCES)

deps:
	@scripts/install-deps.sh

## models: fetch the model files listed in Models/manifest.tsv and verify their sha256 (idempotent)
models:
	@scripts/fetch-models.sh

## testdata: sample images (face_recognition 1.3.0 sdist, skimage, opencv-doc), the dlib reference venv, the
## XLSX reader and the browser test's selenium venv
testdata:
	@scripts/fetch-testdata.sh >/dev/null
	@scripts/reference-venv.sh
	@scripts/xlsx-reader-venv.sh >/dev/null
	@scripts/browser-venv.sh >/dev/null

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

bench-face: deps models testdata
	$(SWIFT) build -c release --product face-bench
	.build/release/face-bench

## bench-accuracy: same/different accept rates and the 1:N gate simulation on ../shared/faces-dev (or FACES=DIR)
bench-accuracy: deps models
	$(SWIFT) build -c release --product accuracy-bench
	.build/release/accuracy-bench $(FACES)

## bench-liveness: the liveness real scores and accept rates per threshold on gate frames composed from
## ../shared/faces-dev (or FACES=DIR) as people, phone screens and prints; the test photos; the models' samples
bench-liveness: deps models
	@scripts/fetch-testdata.sh >/dev/null
	$(SWIFT) build -c release --product accuracy-bench
	.build/release/accuracy-bench --liveness $(FACES)

bench-match:
	scripts/bench-match.sh

bench-capture: deps
	scripts/bench-capture.sh

## bench-pipeline: replay frames/s with 1 and 2 cameras, stage and decision latency, vs face_recognition
bench-pipeline: deps models testdata
	scripts/bench-pipeline.sh

fuzz: deps
	scripts/fuzz.sh

clean:
	rm -rf .build
