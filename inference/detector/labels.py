"""Class names: COCO-80 in the order the COCO-trained detectors emit them."""

from __future__ import annotations

COCO80: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

PERSON_ONLY: tuple[str, ...] = ("person",)


def default_labels(num_classes: int) -> tuple[str, ...]:
    """COCO-80 for 80 classes, ``person`` for one, ``class_<i>`` otherwise."""
    if num_classes == len(COCO80):
        return COCO80
    if num_classes == 1:
        return PERSON_ONLY
    return tuple(f"class_{i}" for i in range(num_classes))
