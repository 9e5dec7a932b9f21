"""File sources: the real video, a truncated copy of it, and folders of images with broken ones."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from xueliang.inference.errors import SourceEnded, SourceUnavailable
from xueliang.inference.frames import Image
from xueliang.inference.sources import FileSource, FrameSource, SourceState, paced


async def test_video_frames_in_order(vtest_path: Path, vtest_frame: Callable[[int], Image]) -> None:
    source = FileSource("replay-1", vtest_path)
    assert isinstance(source, FrameSource)
    frames = [await source.read() for _ in range(3)]
    await source.close()
    assert [f.seq for f in frames] == [1, 2, 3]
    assert all(f.image.shape == (576, 768, 3) and f.source == "file" and f.camera_id == "replay-1" for f in frames)
    assert (frames[2].image == vtest_frame(2)).all()
    assert source.stats().frames == 3 and source.stats().state is SourceState.STOPPED
    with pytest.raises(SourceUnavailable, match="is closed"):
        await source.read()


async def test_a_truncated_video_is_read_to_where_it_breaks_and_counted(vtest_path: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.avi"
    truncated.write_bytes(vtest_path.read_bytes()[:2_000_000])  # about a quarter of the clip
    source = FileSource("replay-2", truncated)
    frames = [frame async for frame in paced(source)]  # ends quietly at SourceEnded
    stats = source.stats()
    await source.close()
    assert 100 < len(frames) < 795
    assert stats.frames == len(frames) and stats.corrupt == 1
    assert f"ended after {len(frames)} of 795 frames (truncated?)" in stats.last_error
    with pytest.raises(SourceUnavailable):
        await source.read()


async def test_video_ends_or_loops(vtest_path: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.avi"
    cap = cv2.VideoCapture(str(vtest_path))
    writer = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for _ in range(4):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    once = FileSource("replay-3", short)
    assert len([f async for f in paced(once)]) == 4
    with pytest.raises(SourceEnded, match=r"replay-3: video .*short\.avi ended"):
        await once.read()
    await once.close()
    looping = FileSource("replay-3", short, loop=True)
    assert [(await looping.read()).seq for _ in range(10)] == list(range(1, 11))
    await looping.close()
    assert once.stats().corrupt == 0 and looping.stats().corrupt == 0


async def test_image_folder_skips_and_counts_broken_images(tmp_path: Path, vtest_frame: Callable[[int], Image]) -> None:
    big = cv2.resize(vtest_frame(10), (1920, 1080))
    jpeg = cv2.imencode(".jpg", big)[1].tobytes()
    (tmp_path / "01.jpg").write_bytes(jpeg)
    (tmp_path / "02.jpg").write_bytes(jpeg[: len(jpeg) // 3])  # truncated upload
    (tmp_path / "03.png").write_bytes(cv2.imencode(".png", vtest_frame(20))[1].tobytes())
    (tmp_path / "04.jpg").write_bytes(b"\x00" * 1000)  # not a JPEG at all
    (tmp_path / "05.jpg").write_bytes(jpeg)
    (tmp_path / "notes.txt").write_text("ignored: not an image")
    source = FileSource("folder-1", tmp_path, target_size=(416, 416))
    frames = [f async for f in paced(source)]
    stats = source.stats()
    await source.close()
    assert [f.image.shape for f in frames] == [(270, 480, 3), (576, 768, 3), (270, 480, 3)]
    assert [f.scale for f in frames] == [0.25, 1.0, 0.25]
    assert frames[0].jpeg == jpeg and frames[1].jpeg is None
    assert (stats.frames, stats.corrupt) == (3, 2)
    assert "04.jpg: not a JPEG" in stats.last_error


async def test_a_looping_folder_of_only_broken_images_ends(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"broken")
    source = FileSource("folder-2", tmp_path, loop=True)
    with pytest.raises(SourceEnded):
        await source.read()
    await source.close()
    assert source.stats().corrupt == 1


def test_missing_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match=r"missing\.avi does not exist"):
        FileSource("x", tmp_path / "missing.avi")
    fifo = tmp_path / "pipe.avi"
    os.mkfifo(fifo)
    with pytest.raises(SourceUnavailable, match="neither a video file nor a folder"):
        FileSource("x", fifo)
    fifo.unlink()
    with pytest.raises(SourceUnavailable, match="holds no images"):
        FileSource("x", tmp_path)


async def test_a_file_that_is_no_video_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.avi"
    bogus.write_text("not a video")
    source = FileSource("x", bogus)
    with pytest.raises(SourceUnavailable, match="cannot open video"):
        await source.read()
    await source.close()
