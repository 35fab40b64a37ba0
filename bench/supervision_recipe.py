"""The recipe a supervision user writes today, as the throughput benchmark's peer (d).

frame generator -> ultralytics YOLO running its OpenVINO export -> Roboflow trackers ByteTrack ->
supervision box and label annotators -> supervision VideoSink. Run by bench/throughput.py:

    python bench/supervision_recipe.py MODEL_OPENVINO_DIR SOURCE TARGET
"""

from __future__ import annotations

import sys

import supervision as sv
from trackers import ByteTrackTracker
from ultralytics import YOLO


def main(model_dir: str, source: str, target: str) -> None:
    model = YOLO(model_dir, task="detect")
    tracker = ByteTrackTracker(frame_rate=sv.VideoInfo.from_video_path(source).fps)
    boxes, labels = sv.BoxAnnotator(), sv.LabelAnnotator()
    with sv.VideoSink(target, sv.VideoInfo.from_video_path(source)) as sink:
        for frame in sv.get_video_frames_generator(source):
            detections = sv.Detections.from_ultralytics(model(frame, verbose=False)[0])
            detections = tracker.update(detections)
            names = [f"#{t} {model.names[c]}" for t, c in zip(detections.tracker_id, detections.class_id)]
            scene = boxes.annotate(frame.copy(), detections)
            sink.write_frame(labels.annotate(scene, detections, labels=names))


if __name__ == "__main__":
    main(*sys.argv[1:4])
