"""Object operations shared by the command, the bulk engine, streams and fsspec.

``client`` (the JSON API calls), ``urls`` (gs:// URLs and endpoints), ``paths``
(safe local names), ``transfer`` (one object up or down through the right
engine), ``localerrors`` and ``sessions`` live here, below the command, so the
library's public modules never import ``resumable_media._cli``.
"""
