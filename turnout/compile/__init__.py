"""The compile layer: policy set -> translation -> consistency-checked snapshot."""

from __future__ import annotations

from turnout.compile._compiler import Compiled, Compiler, compile_policies, resources_by_type

__all__ = ["Compiled", "Compiler", "compile_policies", "resources_by_type"]
