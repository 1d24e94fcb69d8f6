"""The command line's probe images: a folder of image files or a `.npy` array, read as
`keras.utils.image_dataset_from_directory` reads a folder (classes from the subfolders' names,
sorted; bilinear resizing without antialiasing to the model's input size; float32 in 0-255), with
Pillow and `backend.resizing`, so that it needs no TensorFlow."""

import dataclasses
import os

import numpy as np
from keras import ops
from PIL import Image, UnidentifiedImageError

from tb_cnnviz.backend import resizing
from tb_cnnviz.cli.errors import CommandError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # image_dataset_from_directory's
COLOUR_MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # channels -> Pillow's mode, as tf.image.decode_image converts


@dataclasses.dataclass
class Images:
    """Probe images (N, H, W, C) float32, their class per image (None without class folders) and
    the folders' names (None without)."""

    pixels: np.ndarray
    labels: np.ndarray | None = None
    folder_classes: list | None = None


def read_images(path: str, input_shape: tuple, max_images: int) -> Images:
    """The images at `path` (a folder or a `.npy` file) for a model whose image input is
    `input_shape` (H, W, C), at most `max_images`, spread evenly over the classes.

    Raises:
      CommandError: no such path, nothing readable in it, a file that is not an image, or images
        that cannot fit the model (the message says which and what the model takes).
    """
    if not os.path.exists(path):
        raise CommandError(f"--images: no such file or folder: {path}")
    if os.path.isdir(path):
        return _read_folder(path, input_shape, max_images)
    if not path.endswith(".npy"):
        raise CommandError(f"--images: {path} is neither a folder of images nor a .npy array")
    try:
        pixels = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise CommandError(f"--images: cannot read {path} as a NumPy array: {error}") from None
    if pixels.ndim != 4 or not np.issubdtype(pixels.dtype, np.number):
        raise CommandError(f"--images: {path} holds an array of shape {pixels.shape} and type {pixels.dtype}; "
                           f"give images (N, H, W, C) of numbers")
    if pixels.shape[-1] != input_shape[2]:
        raise CommandError(f"--images: {path} holds images of {pixels.shape[-1]} channels, shape {pixels.shape[1:]}; "
                           f"the model takes {_described(input_shape)}")
    if len(pixels) == 0:
        raise CommandError(f"--images: {path} holds no images")
    size = _target_size(input_shape, [pixels.shape[1:3]], path)
    return Images(_resized(pixels[:max_images].astype(np.float32), size))


def _read_folder(path, input_shape, max_images):
    classes = sorted(entry.name for entry in os.scandir(path) if entry.is_dir() and not entry.name.startswith("."))
    folders = [os.path.join(path, name) for name in classes] if classes else [path]
    files = [_image_files(folder) for folder in folders]
    if not any(files):
        raise CommandError(f"--images: no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}"
                           + (f" or its class folders {classes}" if classes else ""))
    chosen = _spread(files, max_images)
    if input_shape[2] not in COLOUR_MODES:
        raise CommandError(f"the model takes {_described(input_shape)}: image files have 1, 3 or 4 channels")
    decoded = [(_decoded(name, COLOUR_MODES[input_shape[2]]), label) for label, name in chosen]
    size = _target_size(input_shape, [image.shape[:2] for image, _ in decoded], path)
    pixels = np.concatenate([_resized(image[None], size) for image, _ in decoded])
    labels = np.array([label for _, label in decoded], np.int64) if classes else None
    return Images(pixels, labels, classes or None)


def _image_files(folder):
    """The image files in `folder` and below, in image_dataset_from_directory's order: by folder,
    then name, as strings (img10 before img9); links to folders not followed, as its default."""
    return [os.path.join(root, name) for root, _, names in sorted(os.walk(folder))
            for name in sorted(names) if name.lower().endswith(IMAGE_EXTENSIONS)]


def _spread(files, limit):
    """[(class, file)] of at most `limit` files, taken from each class in turn, grouped by class."""
    chosen = []
    for rank in range(max(len(names) for names in files)):
        chosen += [(label, names[rank]) for label, names in enumerate(files) if rank < len(names)]
    return sorted(chosen[:limit], key=lambda pair: pair[0])


def _decoded(name, mode):
    try:
        with Image.open(name) as image:
            image.seek(0)  # an animation's first frame
            if image.mode.startswith("I"):  # 16-bit (or 32-bit) grey: to 8 bits, as TensorFlow's decoder scales it
                image = Image.fromarray(np.round(np.asarray(image, np.float64) / 257).clip(0, 255).astype(np.uint8))
            return np.asarray(image.convert(mode), np.float32).reshape(image.height, image.width, -1)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise CommandError(f"--images: cannot read {name} as an image: {error}") from None


def _target_size(input_shape, sizes, path):
    """The model's size where it has one; where it takes any, the images' own, which must agree."""
    wanted = input_shape[:2]
    if None not in wanted:
        return wanted
    found = {tuple(int(side) for side, fixed in zip(size, wanted) if fixed is None) for size in sizes}
    if len(found) != 1:
        raise CommandError(f"--images: {path} holds images of {len(found)} sizes where the model takes any: "
                           f"resize them to one size first")
    free = iter(found.pop())
    return tuple(next(free) if fixed is None else fixed for fixed in wanted)


def _resized(images, size):
    """(N, H, W, C) images resized to `size` as tf.image.resize's bilinear does (`backend.resizing`)."""
    if images.shape[1:3] == tuple(size):
        return images
    return ops.convert_to_numpy(resizing.resize(images, size, "bilinear"))


def _described(input_shape):
    height, width, channels = ("any" if side is None else side for side in input_shape)
    return f"images of {height} x {width} pixels and {channels} channels"
