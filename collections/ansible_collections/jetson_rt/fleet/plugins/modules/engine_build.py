#!/usr/bin/python
# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Ansible module jetson_rt.fleet.engine_build: build an engine on the target, idempotently."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: engine_build
short_description: Build a TensorRT engine or an ONNX Runtime model on the target, only when needed
version_added: "0.1.0"
description:
  - Wraps C(jetson-rt build-engine --if-changed --json) on the host that will run the engine
    (TensorRT engines are specific to the device and TensorRT version that built them).
  - Nothing is built when the manifest beside O(output) records the same ONNX model (sha256),
    the same build flags and the same platform, and O(output) still matches its recorded
    sha256; the task then reports C(changed=false).
  - A failed build fails the task saying why. C(build-engine) writes atomically, so O(output)
    and its manifest are left as they were, and the module never touches the service; a failed
    build of a new version leaves the running engine and runner untouched.
  - In check mode nothing is built; the venv's C(jetson-rt) is asked whether a build would
    happen (the same comparison C(--if-changed) makes) and the task reports that.
  - With O(from_cache), a build that is needed first tries the engine another host of the same
    class built (copied to O(from_cache) by the role's engine cache). It is installed only when
    its recorded fingerprint equals this host's, it matches its manifest's sha256 and size, and
    it deserialises here; otherwise the module builds locally and says why in RV(cache_rejected).
  - After every build or import the fingerprint file is written beside the artifact.
author:
  - jetson-rt maintainers (!UNKNOWN)
options:
  model:
    description: The ONNX model on the target.
    type: path
    required: true
  output:
    description: The artifact to write (C(.engine) for tensorrt, C(.ort.onnx) for onnxruntime).
    type: path
    required: true
  backend:
    description: C(tensorrt) on Jetsons; C(onnxruntime) on hosts without a GPU (the sim fleet).
    type: str
    choices: [tensorrt, onnxruntime]
    default: tensorrt
  precision:
    description: TensorRT layer precision; omitted, build-engine picks fp16 (onnxruntime fp32).
    type: str
    choices: [fp32, fp16, int8, best]
  shapes:
    description: "Fixed input shapes, name to dimensions (C({input: [1, 3, 224, 224]}))."
    type: dict
    default: {}
  min_shapes:
    description: Smallest shapes of the optimisation profile (dynamic inputs).
    type: dict
    default: {}
  opt_shapes:
    description: Shapes TensorRT tunes for.
    type: dict
    default: {}
  max_shapes:
    description: Largest shapes of the optimisation profile.
    type: dict
    default: {}
  dla_core:
    description: Build for this DLA core (refused by build-engine on a platform without DLA).
    type: int
  allow_gpu_fallback:
    description: With O(dla_core), run layers the DLA cannot run on the GPU.
    type: bool
    default: false
  calib_dir:
    description: Folder of C(.npy) samples for INT8 calibration.
    type: path
  calib_cache:
    description: INT8 calibration cache to reuse (written after calibrating).
    type: path
  timing_cache:
    description: TensorRT timing cache to load, extend and save (kept per host).
    type: path
  workspace_mib:
    description: TensorRT builder workspace limit.
    type: int
  builder_optimization_level:
    description: TensorRT builder optimisation level (0-5).
    type: int
  ort_optimization:
    description:
      - ONNX Runtime graph optimisation level of the saved model.
      - V(all) (the command's default) assumes the build host's CPU features, which the
        manifest records; a host without them refuses the artifact. V(portable) (the
        same as V(extended)) makes an artifact that runs on any CPU of the architecture.
    type: str
    choices: [disable, basic, extended, all, portable]
  extra_args:
    description: More C(build-engine) arguments, appended as given.
    type: list
    elements: str
    default: []
  jetson_rt:
    description: The C(jetson-rt) console script of the runtime's venv.
    type: path
    default: /opt/jetson-rt/venv/bin/jetson-rt
  fingerprint_only:
    description:
      - Only report this host's engine fingerprint (module SKU, L4T, TensorRT/CUDA or ONNX Runtime
        versions, GPU/DLA target, model sha256, build flags); build nothing. Runs in check mode.
    type: bool
    default: false
  from_cache:
    description: A folder holding a copied engine, its manifest, fingerprint and side files.
    type: path
  timing_caches:
    description:
      - TensorRT timing caches of other hosts of this class, combined into O(timing_cache) with
        TensorRT before a local build (versions or devices that differ are skipped).
    type: list
    elements: path
    default: []
notes:
  - Supports check mode and diff mode (the manifest before, the reasons for a build after).
  - The timing cache changes on every build; it is an input of the build, not compared by
    C(--if-changed) beyond its path.
"""

EXAMPLES = r"""
- name: Engines | build det v3 on the device
  jetson_rt.fleet.engine_build:
    model: /var/lib/jetson-rt/engines/det/3/model.onnx
    output: /var/lib/jetson-rt/engines/det/3/model.engine
    precision: fp16
    shapes: {images: [1, 3, 640, 640]}
    timing_cache: /var/lib/jetson-rt/cache/timing.cache

- name: Engines | ONNX Runtime model on a host without a GPU
  jetson_rt.fleet.engine_build:
    model: /var/lib/jetson-rt/engines/cls/1/model.onnx
    output: /var/lib/jetson-rt/engines/cls/1/model.ort.onnx
    backend: onnxruntime
    shapes: {input: [1, 3, 16, 16]}
"""

RETURN = r"""
artifact:
  description: The artifact (built now or already up to date).
  returned: always
  type: str
reasons:
  description: Why a build happened (or would happen in check mode); empty when up to date.
  returned: always
  type: list
  elements: str
build_seconds:
  description: Time the build took; null when nothing was built.
  returned: always
  type: float
artifact_sha256:
  description: sha256 of the artifact, from its manifest.
  returned: when the artifact exists
  type: str
manifest:
  description: The manifest beside the artifact (build flags, platform, hashes).
  returned: always
  type: dict
cmd:
  description: The command run (check mode - the one a real run would make).
  returned: always
  type: list
  elements: str
source:
  description: C(cache) (a verified copy was installed), C(local) (built here) or C(none).
  returned: always
  type: str
cache_rejected:
  description: Why the copy in O(from_cache) was not used; null when it was or none was given.
  returned: always
  type: str
fingerprint:
  description: This host's engine fingerprint (sha256 of RV(fingerprint_inputs)).
  returned: when the runtime is installed
  type: str
fingerprint_inputs:
  description: What the fingerprint is made of.
  returned: with O(fingerprint_only)
  type: dict
build_needed:
  description: With O(fingerprint_only), whether a build (or an import) is needed here.
  returned: with O(fingerprint_only)
  type: bool
"""

import os
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jetson_rt.fleet.plugins.module_utils.engine_build import (
    CHECK_SNIPPET,
    BuildError,
    build_args,
    cached_files,
    fingerprint_cmd,
    manifest_summary,
    parse_build_output,
    parse_check_output,
    parse_json_output,
    read_manifest,
    venv_python,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "model": {"type": "path", "required": True},
    "output": {"type": "path", "required": True},
    "backend": {"type": "str", "choices": ["tensorrt", "onnxruntime"], "default": "tensorrt"},
    "precision": {"type": "str", "choices": ["fp32", "fp16", "int8", "best"]},
    "shapes": {"type": "dict", "default": {}},
    "min_shapes": {"type": "dict", "default": {}},
    "opt_shapes": {"type": "dict", "default": {}},
    "max_shapes": {"type": "dict", "default": {}},
    "dla_core": {"type": "int"},
    "allow_gpu_fallback": {"type": "bool", "default": False},
    "calib_dir": {"type": "path"},
    "calib_cache": {"type": "path"},
    "timing_cache": {"type": "path"},
    "workspace_mib": {"type": "int"},
    "builder_optimization_level": {"type": "int"},
    "ort_optimization": {
        "type": "str",
        "choices": ["disable", "basic", "extended", "all", "portable"],
    },
    "extra_args": {"type": "list", "elements": "str", "default": []},
    "jetson_rt": {"type": "path", "default": "/opt/jetson-rt/venv/bin/jetson-rt"},
    "fingerprint_only": {"type": "bool", "default": False},
    "from_cache": {"type": "path"},
    "timing_caches": {"type": "list", "elements": "path", "default": []},
}


def _verdict(module: AnsibleModule, args: list[str]) -> dict[str, Any]:
    """Would ``build-engine --if-changed`` build? (asked of the venv, builds nothing)"""
    params = module.params
    python = venv_python(params["jetson_rt"])
    if not os.access(python, os.X_OK):
        return {"changed": True, "reasons": [f"{params['jetson_rt']} is not installed yet"]}
    rc, out, err = module.run_command([str(python), "-c", CHECK_SNIPPET, *args])
    return parse_check_output(rc, out, err)


def _runtime_json(module: AnsibleModule, action: list[str], args: list[str]) -> dict[str, Any]:
    cmd = fingerprint_cmd(venv_python(module.params["jetson_rt"]), action, args)
    rc, out, err = module.run_command(cmd)
    try:
        return parse_json_output(" ".join(cmd[2:4]), rc, out, err)
    except BuildError as exc:
        module.fail_json(msg=str(exc), cmd=cmd, rc=rc, stderr=err, stdout=out)
        raise  # fail_json exits; this keeps type checkers informed


def _fingerprint_only(module: AnsibleModule, args: list[str]) -> None:
    params = module.params
    verdict = _verdict(module, args)
    if (
        not os.access(venv_python(params["jetson_rt"]), os.X_OK)
        or not Path(params["model"]).is_file()
    ):
        # Not installed or not copied yet (check mode on a new host): no fingerprint.
        module.exit_json(
            changed=False,
            fingerprint=None,
            fingerprint_inputs={},
            build_needed=True,
            reasons=list(verdict["reasons"]),
            source="none",
            cache_rejected=None,
        )
    result = _runtime_json(module, ["--print"], args)
    module.exit_json(
        changed=False,
        fingerprint=result["fingerprint"],
        fingerprint_inputs=result["inputs"],
        build_needed=bool(verdict["changed"]),
        reasons=list(verdict["reasons"]),
        source="none",
        cache_rejected=None,
    )


def _check(module: AnsibleModule, args: list[str], cmd: list[str]) -> None:
    params = module.params
    verdict = _verdict(module, args)
    if verdict["changed"] and params["from_cache"]:
        # In check mode the role copies nothing into from_cache: say what a run does.
        verdict["reasons"] = [
            *verdict["reasons"],
            "a copy from the engine cache is installed if there is one and it verifies "
            "here, else the engine is built here",
        ]
    before = read_manifest(params["output"])
    diff = {
        "before_header": params["output"],
        "after_header": params["output"],
        "before": manifest_summary(before),
        "after": (
            "".join(f"build: {reason}\n" for reason in verdict["reasons"])
            if verdict["changed"]
            else manifest_summary(before)
        ),
    }
    module.exit_json(
        changed=bool(verdict["changed"]),
        artifact=params["output"],
        reasons=list(verdict["reasons"]),
        build_seconds=None,
        artifact_sha256=before.get("artifact_sha256"),
        manifest=before,
        cmd=cmd,
        diff=diff,
        source="none",
        cache_rejected=None,
    )


def _import(module: AnsibleModule, args: list[str]) -> tuple[bool, str | None]:
    """Install the copy in ``from_cache`` if it verifies; (imported, why not)."""
    params = module.params
    if not cached_files(params["from_cache"], Path(params["output"]).name):
        return False, f"no engine in {params['from_cache']}"
    result = _runtime_json(module, ["--import", params["from_cache"]], args)
    return bool(result.get("imported")), result.get("reason")


def _merge_timing_caches(module: AnsibleModule, args: list[str]) -> None:
    params = module.params
    own = params["timing_cache"]
    sources = [path for path in params["timing_caches"] if Path(path).is_file()]
    if params["backend"] != "tensorrt" or not own or not sources:
        return
    if Path(own).is_file():
        sources.insert(0, own)
    _runtime_json(module, ["--merge-timing-caches", own, *sources], [])


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params["dla_core"] is None and params["allow_gpu_fallback"]:
        module.fail_json(msg="allow_gpu_fallback applies to a DLA build: give dla_core as well")
    args = build_args(params)
    cmd = [params["jetson_rt"], "build-engine", *args, "--if-changed", "--json"]
    if params["fingerprint_only"]:
        _fingerprint_only(module, args)
        return
    if module.check_mode:
        _check(module, args, cmd)
        return
    if not os.access(params["jetson_rt"], os.X_OK):
        module.fail_json(
            msg=f"{params['jetson_rt']} is not installed: install the runtime first "
            "(role inference_runtime, tag inference_runtime_install)",
            cmd=cmd,
        )
    before = read_manifest(params["output"])
    source, rejected = "none", None
    result: dict[str, Any] = {"changed": False, "reasons": []}
    if params["from_cache"] and _verdict(module, args)["changed"]:
        imported, rejected = _import(module, args)
        if imported:
            source = "cache"
            result = {
                "changed": True,
                "reasons": ["imported a verified copy from the engine cache"],
            }
    if source != "cache":
        _merge_timing_caches(module, args)
        rc, out, err = module.run_command(cmd)
        try:
            result = parse_build_output(rc, out, err, params["output"])
        except BuildError as exc:
            module.fail_json(msg=str(exc), cmd=cmd, rc=rc, stderr=err, stdout=out)
        source = "local" if result["changed"] else "none"
    written = _runtime_json(module, ["--write"], args)
    after = read_manifest(params["output"])
    module.exit_json(
        changed=bool(result["changed"]),
        artifact=result.get("artifact", params["output"]),
        reasons=list(result.get("reasons") or []),
        build_seconds=result.get("build_seconds"),
        artifact_sha256=after.get("artifact_sha256"),
        manifest=after,
        source=source,
        cache_rejected=rejected,
        fingerprint=written["fingerprint"],
        cmd=cmd,
        diff={
            "before_header": params["output"],
            "after_header": params["output"],
            "before": manifest_summary(before),
            "after": manifest_summary(after),
        },
    )


if __name__ == "__main__":
    main()
