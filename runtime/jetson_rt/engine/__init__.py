"""Model preparation: ONNX to TensorRT engines or ONNX Runtime-optimised models.

``jetson-rt build-engine`` (:mod:`jetson_rt.engine.cli`) builds, the manifest
beside every artifact (:mod:`jetson_rt.engine.manifest`) records how, and
backends check it before they load.
"""

from __future__ import annotations
