"""Pre- and post-processing stages around a model, on the GPU and on the CPU.

Declared per model in runner.yaml (``preprocess``/``postprocess``, see
:mod:`jetson_rt.prepost.spec`). The GPU lane (:mod:`jetson_rt.prepost.gpu`)
runs NVRTC kernels on the inference stream, captured with the inference in one
CUDA graph; the CPU lane (:mod:`jetson_rt.prepost.cpu`) computes the same in
numpy with preallocated buffers. Importing this package needs neither
cuda-python nor a GPU.
"""
