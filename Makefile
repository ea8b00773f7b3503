# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
SWIFT ?= swift
SHELL := /bin/bash

.PHONY: run test deps models testdata build release bench-face bench-match bench-capture bench-pipeline bench-accuracy fuzz clean

## run: install what is missing, fetch + verify the models, build in release, run the gate demo
run: deps models testdata release
	.build/release/attendance demo

## test: the same installs, then the whole test suite
test: deps models testdata
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

deps:
	@scripts/install-deps.sh

## models: fetch the model files listed in Models/manifest.tsv and verify their sha256 (idempotent)
models:
	@scripts/fetch-models.sh

## testdata: sample images (face_recognition 1.3.0 sdist, skimage, opencv-doc) and the dlib reference venv
testdata:
	@scripts/fetch-testdata.sh >/dev/null
	@scripts/reference-venv.sh
	@scripts/xlsx-reader-venv.sh >/dev/null

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
