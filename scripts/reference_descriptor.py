#!/usr/bin/env python3
"""dlib's own reference pipeline, for the face engine's correctness tests.

Reads a JSON request on stdin: {"image": PNG path, "faces": [{"landmarks": [[x,y]*5]}]}
and prints, per face, dlib's descriptor for exactly those landmarks
(shape_predictor_5 points -> get_face_chip_details(shape, 150, 0.25) -> ResNet), plus
face_recognition's own encodings of the image (HOG detector, 5-point model) under "face_recognition".
Runs in the venv made by scripts/reference-venv.sh (dlib-bin, face_recognition 1.3.0).
"""
import json, sys
import dlib, numpy as np
from PIL import Image
import face_recognition_models as frm

req = json.load(sys.stdin)
img = np.array(Image.open(req["image"]).convert("RGB"))
net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
out = {"faces": []}
for face in req["faces"]:
    pts = [dlib.point(int(round(x)), int(round(y))) for x, y in face["landmarks"]]
    xs = [p.x for p in pts]; ys = [p.y for p in pts]
    shape = dlib.full_object_detection(dlib.rectangle(min(xs), min(ys), max(xs), max(ys)), pts)
    out["faces"].append(list(net.compute_face_descriptor(img, shape, 0, 0.25)))
import face_recognition
locs = face_recognition.face_locations(img)
out["face_recognition"] = [{"box": list(l), "encoding": list(e)} for l, e in
                           zip(locs, face_recognition.face_encodings(img, locs, model="small"))]
print(json.dumps(out))
