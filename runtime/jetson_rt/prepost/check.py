"""``check-config``'s look at a model file: do the pre/post stages fit its tensors?"""

from __future__ import annotations

from typing import Any

from jetson_rt.prepost.spec import PostprocessSpec, PreprocessSpec, check_fit


def onnx_io_shapes(path: Any) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Static input and output shapes of an ONNX model (a symbolic dim is 0)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def shapes(values: Any) -> dict[str, tuple[int, ...]]:
        return {
            value.name: tuple(
                int(dim.dim_value) if dim.HasField("dim_value") else 0
                for dim in value.type.tensor_type.shape.dim
            )
            for value in values
        }

    initializers = {init.name for init in model.graph.initializer}
    inputs = {k: v for k, v in shapes(model.graph.input).items() if k not in initializers}
    return inputs, shapes(model.graph.output)


def model_file_problems(
    name: str, path: Any, pre: PreprocessSpec | None, post: PostprocessSpec | None, shapes: Any
) -> list[str]:
    """Stages that do not fit an ONNX model file's input or output (for check-config)."""
    if (pre is None and post is None) or not str(path).endswith(".onnx"):
        return []
    try:
        inputs, outputs = onnx_io_shapes(path)
    except Exception as exc:  # onnx's parser raises several types for a bad file
        return [f"models.{name}.path: cannot read the ONNX model's shapes: {exc}"]
    problems: list[str] = []
    where = f"models.{name}"

    def add(path: str, message: str) -> None:
        problems.append(f"{path}: {message}")

    in_shape = out_shape = None
    if pre is not None and inputs:
        key = pre.input or next(iter(inputs))
        if key not in inputs:
            add(f"{where}.preprocess.input", f"the model has no input {key!r}")
        else:
            in_shape = tuple(shapes.get(key, inputs[key]))
            if 0 in in_shape:
                in_shape = None  # dynamic: checked when the backend is loaded
    if post is not None and outputs:
        key = post.output or next(iter(outputs))
        if key not in outputs:
            add(f"{where}.postprocess.output", f"the model has no output {key!r}")
        else:
            out_shape = outputs[key]
            if 0 in out_shape:
                out_shape = None
    check_fit(pre, post, in_shape, out_shape, where=where, add=add)
    return problems
