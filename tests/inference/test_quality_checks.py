"""Video quality diagnosis: each check fires on a crafted fault of a real frame and stays quiet on
normal frames of the same camera."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.inference.logic_fixtures import (
    black,
    blue_tinted,
    blurred,
    clip_frame,
    clip_image,
    covered,
    jpeg,
    rotated,
    shifted,
    tinted,
)
from xueliang.inference.frames import Frame, Image
from xueliang.inference.quality import (
    BLACK,
    BLUR,
    COLOUR_CAST,
    FROZEN,
    IN_PLACE_MATCH,
    OCCLUDED,
    SCENE_CHANGED,
    QualityChecker,
    QualityReport,
    QualityState,
    _high_pass,
    quality_anomalies,
    shrink_to_width,
)
from xueliang.inference.rules.evidence import FrameEvidence
from xueliang.inference.rules.settings import QualitySettings

CHECKER = QualityChecker()


def visit(state: QualityState, image: Image, index: int = 100) -> QualityReport:
    return CHECKER.check(clip_frame(index, image=image), state)


def learned() -> QualityState:
    """A camera that has had one good visit (frame 0): it has a reference and a last frame."""
    state = QualityState()
    assert visit(state, clip_image(0), index=0).faults == ()
    assert state.reference is not None
    return state


@pytest.mark.parametrize("index", [100, 300, 600, 700])
def test_normal_frames_raise_nothing(index: int) -> None:
    report = visit(learned(), clip_image(index), index)
    assert report.faults == (), report.metrics
    assert not report.blocks_detection
    # the measured values sit clearly on the good side of each threshold
    s = QualitySettings()
    m = report.metrics
    assert m["sharpness"] > 3 * s.blur_min_sharpness
    assert m["occluded_fraction"] < s.occluded_min_fraction / 2
    assert m["frozen_diff"] > 10 * s.frozen_max_diff
    assert m["scene_similarity"] > s.scene_min_similarity + 0.1
    assert m["cast_factor"] < s.cast_min_factor - 0.5


@pytest.mark.parametrize(
    ("craft", "rule"),
    [
        (black, BLACK),
        (blurred, BLUR),
        (covered, OCCLUDED),
        (tinted, COLOUR_CAST),
        (blue_tinted, COLOUR_CAST),
        (rotated, SCENE_CHANGED),
        (lambda image: shifted(image, 0.15), SCENE_CHANGED),
        (lambda image: cv2.flip(image, 1), SCENE_CHANGED),
    ],
    ids=["black", "blur", "occluded", "red-cast", "blue-cast", "rotated", "shifted", "mirrored"],
)
def test_each_fault_fires_alone(craft: object, rule: str) -> None:
    report = visit(learned(), craft(clip_image(100)))  # type: ignore[operator]
    assert report.rules == {rule}, report.metrics
    fault = report.faults[0]
    assert fault.threshold > 0
    if rule in (BLACK, BLUR) or (rule == SCENE_CHANGED and "basis" not in fault.detail):
        assert fault.value < fault.threshold
    else:
        assert fault.value >= fault.threshold


def test_black_and_covered_pictures_block_detection() -> None:
    assert visit(learned(), black(clip_image(100))).blocks_detection
    assert visit(learned(), covered(clip_image(100))).blocks_detection
    assert not visit(learned(), blurred(clip_image(100))).blocks_detection


def test_the_same_frame_twice_is_frozen() -> None:
    state = learned()
    assert visit(state, clip_image(100)).faults == ()
    report = visit(state, clip_image(100))
    assert report.rules == {FROZEN}
    assert report.faults[0].value == 0.0


def test_the_same_frame_recompressed_is_still_frozen() -> None:
    """An encoder stuck on one picture that re-encodes it (JPEG quality 90) differs by ~0.2."""
    state = learned()
    image = clip_image(100)
    visit(state, image)
    again = cv2.imdecode(np.frombuffer(jpeg(image, 90), np.uint8), cv2.IMREAD_COLOR)
    report = visit(state, again)
    assert report.rules == {FROZEN}
    assert 0.0 < report.faults[0].value < report.faults[0].threshold


def test_a_black_or_covered_picture_is_not_also_frozen_when_repeated() -> None:
    state = learned()
    visit(state, black(clip_image(100)))
    assert visit(state, black(clip_image(100))).rules == {BLACK}
    visit(state, covered(clip_image(100)))
    assert visit(state, covered(clip_image(100))).rules == {OCCLUDED}


def test_small_camera_shake_is_not_a_scene_change() -> None:
    report = visit(learned(), shifted(clip_image(100), 0.03))
    assert report.faults == ()
    assert report.metrics["scene_shift"] == pytest.approx(0.03, abs=0.005)


def test_a_steady_camera_matches_in_place_and_the_alignment_agrees() -> None:
    """The fast path (no phase correlation when the picture matches in place) says what the
    alignment would: same place, similar enough."""
    state = learned()
    steady = visit(state, clip_image(300), 300)
    assert steady.metrics["scene_shift"] == 0.0 and steady.metrics["scene_similarity"] >= IN_PLACE_MATCH
    assert state.reference is not None
    high = _high_pass(cv2.cvtColor(shrink_to_width(shrink_to_width(clip_image(300), 320), 160), cv2.COLOR_BGR2GRAY))
    b = state.reference.structure.astype(np.float32)
    window = cv2.createHanningWindow((b.shape[1], b.shape[0]), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(b, high, window)
    assert max(abs(dx), abs(dy)) < 0.5  # under half a pixel of 160: the camera has not moved


def test_a_partial_cover_below_the_threshold_is_quiet() -> None:
    report = visit(learned(), covered(clip_image(100), 0.3))
    assert OCCLUDED not in report.rules


def test_darker_light_is_not_a_fault() -> None:
    dusk = (clip_image(100) * 0.5).astype(np.uint8)
    assert visit(learned(), dusk).faults == ()


def test_no_reference_no_scene_check_and_a_faulty_visit_never_becomes_the_reference() -> None:
    state = QualityState()
    visit(state, blurred(clip_image(100)))
    assert state.reference is None  # the blurred picture is not learned as the good one
    assert visit(state, rotated(clip_image(300)), 300).faults == ()  # nothing to compare with yet
    assert state.reference is not None


def test_the_reference_is_renewed_by_a_matching_good_visit_after_the_refresh_time() -> None:
    checker = QualityChecker(QualitySettings(reference_refresh_s=10.0))
    state = QualityState()
    checker.check(clip_frame(0), state)
    first = state.reference
    assert first is not None
    checker.check(clip_frame(100), state)  # 10 s later: due, and it matches
    assert state.reference is not first and state.reference is not None
    assert state.reference.at == clip_frame(100).captured_at
    second = state.reference
    checker.check(clip_frame(300, image=rotated(clip_image(300))), state)  # turned away: never learned
    assert state.reference is second
    state.reset_reference()
    assert state.reference is None


def test_state_memory_is_small_and_bounded() -> None:
    state = learned()
    for index in (100, 300, 600):
        visit(state, clip_image(index), index)
    assert state.last is not None and state.reference is not None
    assert state.last.nbytes + state.reference.structure.nbytes < 30_000
    assert state.visits == 4


def test_anomalies_carry_value_threshold_and_the_frame_as_evidence() -> None:
    frame = clip_frame(100, image=covered(clip_image(100)))
    report = CHECKER.check(frame, learned())
    anomalies = quality_anomalies(report, frame, FrameEvidence(frame))
    assert [a.rule for a in anomalies] == [OCCLUDED]
    a = anomalies[0]
    assert a.camera_id == "cam-1" and a.value == report.faults[0].value and a.threshold == 0.5
    assert a.evidence is not None and (a.evidence.width, a.evidence.height) == (768, 576)
    decoded = cv2.imdecode(np.frombuffer(a.evidence.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (576, 768, 3)
    assert a.observed_at.timestamp() == frame.captured_at


def test_a_frame_with_its_own_jpeg_is_its_evidence() -> None:
    data = jpeg(black(clip_image(100)))
    frame = Frame("cam-2", black(clip_image(100))[::2, ::2].copy(), 1.0, scale=0.5, jpeg=data)
    report = CHECKER.check(frame, QualityState())
    anomalies = quality_anomalies(report, frame, FrameEvidence(frame))
    assert anomalies[0].rule == BLACK
    assert anomalies[0].evidence is not None
    assert anomalies[0].evidence.jpeg == data and anomalies[0].evidence.width == 768


def test_disabled_checks_report_nothing() -> None:
    checker = QualityChecker(QualitySettings(enabled=False))
    assert checker.check(clip_frame(100, image=black(clip_image(100))), QualityState()).faults == ()
