"""TIFF files, and numbered TIFF sequences (``img_0001.tif``, ``img_0002.tif``...) as one
array whose first dimension is the file number. A slice reads only the files it covers."""

from __future__ import annotations

from typing import Any

import numpy as np

from .readers import Entry, Reader, normalize_index

TAG_NAMES = ("ImageDescription", "Software", "DateTime", "Artist", "Make", "Model")


def _tags(page: Any) -> dict[str, Any]:
    out = {}
    for name in TAG_NAMES:
        tag = page.tags.get(name)
        if tag is not None and isinstance(tag.value, str | int | float):
            out[name] = tag.value.strip("\x00") if isinstance(tag.value, str) else tag.value
    return out


def _series(path: str) -> tuple[tuple[int, ...], np.dtype, dict[str, Any]]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        return tuple(series.shape), np.dtype(series.dtype), _tags(tif.pages[0])


class TIFFReader(Reader):
    name = "tiff"
    suffixes = (".tif", ".tiff")
    sequences = True

    def describe(self, files: list[str]) -> list[Entry]:
        shape, dtype, tags = _series(files[0])
        if len(files) > 1:
            for other in files[1:]:
                other_shape, other_dtype, _ = _series(other)
                if (other_shape, other_dtype) != (shape, dtype):
                    raise ValueError(
                        f"{other} is {other_shape} {other_dtype}, the sequence's first file "
                        f"{shape} {dtype}"
                    )
            shape = (len(files), *shape)
        structure = {
            "shape": list(shape),
            "dtype": dtype.str,
            "dims": [f"dim_{i}" for i in range(len(shape))],
        }
        kind = "tiff-sequence" if len(files) > 1 else "tiff"
        meta = {**tags, **({"files": len(files)} if len(files) > 1 else {})}
        text = " ".join(str(v) for v in tags.values() if isinstance(v, str))
        return [Entry("array", kind, structure, meta, "", text)]

    def read_array(self, files: list[str], inner: str, index: tuple) -> np.ndarray:
        import tifffile

        if len(files) == 1:
            image = tifffile.imread(files[0])
            return image[index] if index else image
        page_shape = _series(files[0])[0]
        read, after = normalize_index(index, (len(files), *page_shape))
        first, rest = read[0], read[1:]
        numbers = [first] if isinstance(first, int) else list(range(*first.indices(len(files))))
        if not numbers:
            shape = tuple(
                len(range(*s.indices(n)))
                for s, n in zip(rest, page_shape, strict=True)
                if isinstance(s, slice)
            )
            return np.empty((0, *shape), dtype=_series(files[0])[1])
        images = np.stack([tifffile.imread(files[i])[rest] for i in numbers])
        block = images[0] if isinstance(first, int) else images
        return block[after] if after else block
