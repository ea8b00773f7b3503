#!/usr/bin/env python3
"""face_recognition 1.3.0 (dlib HOG + 5-point + ResNet) on the same replay frames as our pipeline:
every frame: face_locations (HOG, 1 upsample, its default) + face_encodings of each face +
compare with the known encodings. Prints frames per second. The anchor of `make bench-pipeline`."""
import sys, time
import cv2, face_recognition, numpy as np

video, known_paths = sys.argv[1], sys.argv[2:]
known = [face_recognition.face_encodings(face_recognition.load_image_file(p))[0] for p in known_paths]
cap = cv2.VideoCapture(video)
frames = []
while True:
    ok, f = cap.read()
    if not ok:
        break
    frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
t0 = time.perf_counter()
faces = matches = 0
for rgb in frames:
    locs = face_recognition.face_locations(rgb)
    faces += len(locs)
    for enc in face_recognition.face_encodings(rgb, locs):
        if any(face_recognition.compare_faces(known, enc)):
            matches += 1
dt = time.perf_counter() - t0
print(f"face_recognition: {len(frames)} frames in {dt:.1f} s = {len(frames)/dt:.2f} frames/s ({faces} faces, {matches} matched)")
