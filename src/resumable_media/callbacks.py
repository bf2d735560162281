"""Progress callbacks: one signature for every transfer, and adapters to tqdm and fsspec.

Every public transfer of the package (``ParallelDownload.consume``,
``PipelinedUpload.transmit``, ``ParallelUpload.transmit``, ``resumable_media.gcs``,
``resumable_media.open(..., "wb")``, ``resumable_media.fsspec``) takes
``progress(bytes_done, total)``: ``bytes_done`` never goes backwards, ``total`` is the size
or None when unknown (a stream being uploaded), and calls come from one thread at a time, a
few times a second plus once at the end.

    from resumable_media import callbacks
    with callbacks.tqdm_progress(desc="big.bin") as progress:
        gcs.download_blob(blob, "big.bin", progress=progress)

Invariants: adapters hold no lock and never raise for a total that changes from None to a
number; ``tqdm`` and ``fsspec`` are imported only when an adapter for them is built.
"""

from __future__ import annotations

from typing import Any

from resumable_media.parallel.progress import ProgressCallback

__all__ = ["ProgressCallback", "TqdmProgress", "from_fsspec", "tqdm_progress"]


class TqdmProgress:
    """A ``progress(bytes_done, total)`` callable driving a ``tqdm`` bar in bytes.

    Args:
        **tqdm_options: Passed to ``tqdm.tqdm`` (``desc``, ``file``, ``disable``, …);
            ``unit="B"``, ``unit_scale=True`` and ``unit_divisor=1024`` unless given.

    Raises:
        ImportError: tqdm is not installed (``pip install tqdm``).
    """

    def __init__(self, **tqdm_options: Any) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            raise ImportError(
                "the tqdm progress adapter needs tqdm: pip install tqdm, or pass any "
                "progress(bytes_done, total) callable instead"
            ) from None
        options = {"unit": "B", "unit_scale": True, "unit_divisor": 1024}
        options.update(tqdm_options)
        self.bar = tqdm(total=None, **options)
        self._done = 0

    def __call__(self, done: int, total: int | None) -> None:
        if total is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()
        if done > self._done:
            self.bar.update(done - self._done)
            self._done = done

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tqdm_progress(**tqdm_options: Any) -> TqdmProgress:
    """A tqdm bar as a progress callback (use it as a context manager to close the bar).

    Args:
        **tqdm_options: Passed to ``tqdm.tqdm``.

    Returns:
        The callback.
    """
    return TqdmProgress(**tqdm_options)


class _FsspecAdapter:
    def __init__(self, callback: Any) -> None:
        self.callback = callback
        self._total: int | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if total is not None and total != self._total:
            self._total = total
            self.callback.set_size(total)
        self.callback.absolute_update(done)


def from_fsspec(callback: Any) -> ProgressCallback | None:
    """Adapt an ``fsspec.callbacks.Callback`` (``set_size``/``absolute_update``).

    Args:
        callback: The fsspec callback, or None (``fsspec``'s no-op callbacks give None too,
            so nothing is called for them).

    Returns:
        A ``progress(bytes_done, total)`` callable, or None.
    """
    if callback is None:
        return None
    try:
        from fsspec.callbacks import NoOpCallback

        if isinstance(callback, NoOpCallback):
            return None
    except ImportError:  # pragma: no cover - fsspec callbacks without fsspec installed
        pass
    return _FsspecAdapter(callback)
