#!/usr/bin/env python3
"""face_recognition 1.3.0 (dlib HOG + 5-point + ResNet) on the same replay frames as our pipeline:
every frame: face_locations (HOG, 1 upsample, its default) + face_encodings of each face +
compare with the known encodings. Prints frames per second of wall time and per CPU second (user+sys of
the process, all threads). The anchor of `make bench-pipeline`.

usage: face_recognition_bench.py [--max-frames N] VIDEO KNOWN_PHOTO...
  --max-frames N: N frames spread evenly over the video (face_recognition takes ~0.3 s a frame: a minute
  of video at 15 frames/s would take 5 minutes); the rate is per frame either way."""
import sys, time
import cv2, face_recognition, numpy as np

args = sys.argv[1:]
max_frames = 0
if args[:1] == ["--max-frames"]:
    max_frames, args = int(args[1]), args[2:]
video, known_paths = args[0], args[1:]
known = [face_recognition.face_encodings(face_recognition.load_image_file(p))[0] for p in known_paths]
cap = cv2.VideoCapture(video)
frames = []
while True:
    ok, f = cap.read()
    if not ok:
        break
    frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
if max_frames and len(frames) > max_frames:
    step = len(frames) / max_frames
    frames = [frames[int(i * step)] for i in range(max_frames)]
t0, c0 = time.perf_counter(), time.process_time()
faces = matches = 0
for rgb in frames:
    locs = face_recognition.face_locations(rgb)
    faces += len(locs)
    for enc in face_recognition.face_encodings(rgb, locs):
        if any(face_recognition.compare_faces(known, enc)):
            matches += 1
dt, cpu = time.perf_counter() - t0, time.process_time() - c0
print(f"face_recognition: {len(frames)} frames in {dt:.1f} s = {len(frames)/dt:.2f} frames/s, "
      f"{len(frames)/cpu:.2f} frames per CPU second ({faces} faces, {matches} matched)")
