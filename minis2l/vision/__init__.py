"""Images and video: Fashion-MNIST items, tile puzzles and moving clips, all offline.

* :mod:`~minis2l.vision.idx` - read the IDX files Fashion-MNIST ships in (Debian's
  ``dataset-fashion-mnist``), with errors that name a missing or corrupt file; scikit-learn's
  8 x 8 digits, upsampled, where the package is not installed;
* :mod:`~minis2l.vision.images` - :func:`load_images`: 28 x 28 images and their class;
* :mod:`~minis2l.vision.video` - :func:`make_clips`: the images sliding across a canvas, as
  Moving MNIST was made from MNIST, and :func:`load_video`: clips as film strips with their
  class and motion direction.
"""

from minis2l.vision.idx import DEBIAN_DIR, IMAGE_CLASSES, find_images, read_idx
from minis2l.vision.images import load_images
from minis2l.vision.video import DIRECTIONS, film_strip, frames_of, load_video, make_clips

__all__ = [
    "DEBIAN_DIR",
    "DIRECTIONS",
    "IMAGE_CLASSES",
    "film_strip",
    "find_images",
    "frames_of",
    "load_images",
    "load_video",
    "make_clips",
    "read_idx",
]
