"""The 80 COCO classes, and the map from COCO's 91 category ids (with gaps) to them.

YOLO models trained on COCO number the classes 0-79; TF Hub / TF Object Detection models return the
1-based category ids of COCO's original label map (1 person, 13 stop sign, 90 toothbrush; 12, 26, 29, 30,
45, 66, 68, 69, 71 and 83 unused). Mapping both onto one list makes `--classes`, tables and colours mean
the same thing whatever the backend.
"""

from __future__ import annotations

import numpy as np

COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)

# COCO category id of each of the 80 classes, in the order above.
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
    34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
    61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
)

# category id (0-90) -> class index (0-79), -1 for ids that name no class
CATEGORY_TO_CLASS = np.full(max(COCO_CATEGORY_IDS) + 1, -1, dtype=np.int64)
CATEGORY_TO_CLASS[list(COCO_CATEGORY_IDS)] = np.arange(len(COCO_CATEGORY_IDS))
