"""The data layer: data sets loaded into one table, split, frame selection, the prepared folder.

Importing any of it silences FFmpeg's own messages about unreadable videos ("moov atom not
found"), which would precede our one-line error about the same video; OpenCV reads the setting
when it first opens a video. OPENCV_FFMPEG_LOGLEVEL=16 in the environment shows them again.
"""

import os

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
